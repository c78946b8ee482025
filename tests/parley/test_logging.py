import logging

import orjson

from parley.runtime import JsonLines


def record(msg: str, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("parley.node", logging.WARNING, __file__, 1, msg, (), None)
    r.__dict__.update(extra)
    return r


def test_json_lines_name_the_instance_and_the_connection():
    line = orjson.loads(JsonLines("node", "node2").format(record("conn 7: gap", conn=7)))
    assert (line["role"], line["instance"], line["conn"], line["level"], line["msg"]) == (
        "node", "node2", 7, "WARNING", "conn 7: gap")
    plain = orjson.loads(JsonLines("api").format(record("hello")))
    assert plain["instance"] == "api" and "conn" not in plain
