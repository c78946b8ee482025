from parley.tools.status import Sample, metrics_url, render


def test_status_groups_nodes_by_region_and_says_what_does_not_answer():
    nodes = [
        {"id": "n2", "url": "ws://10.0.0.2:8090/ws", "region": "eu", "connections": 3, "load": 0.5, "draining": True,
         "eligible": False},
        {"id": "n1", "url": "ws://10.0.0.1:8090/ws", "region": "eu", "connections": 7, "load": 0.25,
         "draining": False, "eligible": True},
        {"id": "n3", "url": "wss://us.example:443/ws", "region": "us", "connections": 0, "load": 0.0,
         "draining": False, "eligible": True},
    ]
    metrics = {"n1": Sample({"parley_node_messages_published_total": 1204, "parley_node_errors_total": 3}),
               "n2": Sample(reachable=False)}
    lines = render(nodes, metrics, Sample({"parley_archiver_lag": 12}), Sample(reachable=False))
    assert lines[0] == "region eu" and lines[1].startswith("  n1  ") and lines[2].startswith("  n2  ")
    assert "conns 7" in lines[1] and "load 25.00%" in lines[1] and "sent 1,204" in lines[1] and "errors 3" in lines[1]
    assert "no /metrics" in lines[2] and "DRAINING" in lines[2] and "NOT ELIGIBLE" in lines[2]
    assert lines[3] == "region us"
    assert lines[-2].startswith("archiver  lag 12 messages") and lines[-1] == "presence  not answering"
    assert metrics_url("wss://us.example:443/ws") == "https://us.example:443/metrics"
    assert render([], {}, Sample(), Sample())[0] == "no nodes registered"
