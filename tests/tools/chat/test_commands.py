"""A typed line → the command it means (parley.tools.chat.commands), as a table."""

import pytest
from parley.tools.chat import commands as c

CASES = [
    ("", None),
    ("   ", None),
    ("hi bob", c.Say("hi bob")),
    ("  hi  ", c.Say("hi")),
    ("//not a command", c.Say("/not a command")),
    ("/login alice", c.Login("alice")),
    ("/signup alice", c.Signup("alice")),
    ("/LOGIN alice", c.Login("alice")),
    ("/friends", c.Friends()),
    ("/add bob", c.Add("bob")),
    ("/accept bob", c.Accept("bob")),
    ("/list", c.Conversations()),
    ("/convs", c.Conversations()),
    ("/open bob", c.Open("bob")),
    ("/open #climbing", c.Open("#climbing")),
    ("/open 2", c.Open("2")),
    ("/group new climbing bob,carol", c.NewGroup("climbing", ("bob", "carol"))),
    ("/group new climbing bob, carol", c.NewGroup("climbing", ("bob", "carol"))),
    ('/group new "the crag" bob', c.NewGroup("the crag", ("bob",))),
    ("/history", c.History()),
    ("/who", c.Who()),
    ("/help", c.Help()),
    ("/?", c.Help()),
    ("/quit", c.Quit()),
    ("/reply 3 don't \"quote\" me", c.Reply(3, "don't \"quote\" me")),
    ("/edit 12   new  text ", c.Edit(12, "new  text")),
    ("/delete 4", c.Delete(4)),
    ("/react 4 👍", c.React(4, "👍")),
    ("/reply 3", c.Invalid("give a message number and a text: /reply N TEXT")),
    ("/edit x text", c.Invalid("give a message number and the new text: /edit N TEXT")),
    ("/delete", c.Invalid("give a message number: /delete N")),
    ("/react 4", c.Invalid("give a message number and an emoji: /react N EMOJI")),
    ("/exit", c.Quit()),
]


@pytest.mark.parametrize(("line", "command"), CASES)
def test_a_line_means_one_command(line, command):
    assert c.parse(line) == command


@pytest.mark.parametrize(("line", "says"), [
    ("/", "a command name"),
    ("/frobnicate", "unknown command /frobnicate"),
    ("/login", "give one username: /login NAME"),
    ("/login a b", "give one username"),
    ("/friends now", "takes no arguments: /friends"),
    ("/group climbing bob", "usage: /group new NAME"),
    ("/group new climbing", "usage: /group new NAME"),
    ("/group new climbing ,", "name at least one friend"),
    ('/open "bob', "quotation"),
])
def test_a_malformed_command_says_what_is_wrong(line, says):
    out = c.parse(line)
    assert isinstance(out, c.Invalid) and says in out.message


def test_help_names_every_command():
    text = "\n".join(c.help_lines())
    assert all(spec.usage in text for spec in c.COMMANDS.values())
