"""The load-test harness: what every benchmark script in loadtest/ is built from.

    procfs    CPU seconds, RSS and listening ports of a process, the machine's CPU time (/proc)
    meter     CPU % per process over a window, and a verdict on what limited the run
    latency   percentiles and the one latency summary every record uses
    record    machine, versions, git commit and clean-tree flag; the results-file line
    logs      warnings and errors in a run's logs, for the record
    session   the benchmark process: BenchError, printing, signals, event loop, scratch cluster
    accounts  users, friendships and DMs through the API
    wire      the frames load clients send (one place for a protocol change)
    device    the benchmarks' WebSocket clients
    load      open-loop offered load in measured phases

Clusters come from ``parley.tools.cluster``, the launcher ``parley up`` and the tests use too.
"""
