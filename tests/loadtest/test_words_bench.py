"""The banned-words benchmark runs end to end on a small list (its figures are not looked at)."""

from parley.loadtest import words_bench


def test_the_bench_runs_and_draws_what_it_says(capsys):
    assert words_bench.main(["--entries", "200", "--room-entries", "20", "--messages", "5", "--repeats", "1",
                             "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "latin_short_clean" in out and "korean_long_masked" in out
    assert '"actions":["accept"]' in out and '"actions":["mask"]' in out
