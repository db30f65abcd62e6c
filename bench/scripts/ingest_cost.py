#!/usr/bin/env python3
"""Redis cost per inbound webhook, split new sender / known sender (issue 18, ingest).

Starts a private redis-server and a Switchboard node (the binary given, e.g. a debug build:
Redis's own work does not depend on the node's build profile), creates a Twilio account, then
sends signed webhooks one at a time, in phases:

  new:   N webhooks, each from a number never seen before (opens a room);
  known: N webhooks from the senders of phase `new` (their rooms exist).

Around each phase it reads `INFO commandstats` (calls and usec per command; script-inner
commands are counted under their own names too, so `usec` summed double-counts: the figure
reported is `cmdstat_evalsha`'s usec, which includes its inner commands, plus the usec of
every command that is not script-inner, i.e. sent by the node) and the node's own
`switchboard_redis_command_duration_seconds_count` (one per command or pipeline the node sent:
its round trips to Redis, background readers included). Script runs are `cmdstat_evalsha`
calls. Sequential sends, so each figure is per webhook, not diluted by batching.

Usage: ingest_cost.py path/to/switchboard [--n 200]
"""
import base64, hashlib, hmac, json, os, re, socket, subprocess, sys, tempfile, time, urllib.request, urllib.parse

TOKEN = "bench-twilio-token-0000000000000000"
API_KEY = "bench-api-key-ingest-cost"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


def commandstats(port):
    out = {}
    for l in redis_cli(port, "INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", l)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def node_trips(http):
    body = urllib.request.urlopen(http + "/metrics").read().decode()
    total = 0.0
    for l in body.splitlines():
        if l.startswith("switchboard_redis_command_duration_seconds_count"):
            total += float(l.rsplit(" ", 1)[1])
    return total


def post_json(http, path, body):
    req = urllib.request.Request(http + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "authorization": "Bearer " + API_KEY})
    return json.loads(urllib.request.urlopen(req).read())


def webhook(url, n, sender):
    params = [("MessageSid", "SM%032x" % n), ("AccountSid", "AC" + "0" * 32), ("From", sender),
              ("To", "+15005550006"), ("Body", "cost message %d" % n), ("NumMedia", "0")]
    mac = hmac.new(TOKEN.encode(), url.encode(), hashlib.sha1)
    for k, v in sorted(params):
        mac.update(k.encode()); mac.update(v.encode())
    sig = base64.b64encode(mac.digest()).decode()
    req = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), method="POST",
                                 headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig})
    r = urllib.request.urlopen(req)
    assert r.status == 200, r.status


INNER = None  # commands a script calls: everything but evalsha/eval/script and the node's own


def phase(name, port, http, url, senders, start, monitor):
    # Let background work of the previous phase (event batches, timers) settle.
    time.sleep(1.0)
    log = open(os.path.join(tempfile.mkdtemp(), "monitor.log"), "w+")
    mon = subprocess.Popen(["redis-cli", "-p", str(port), "MONITOR"] if monitor else ["sleep", "3600"], stdout=log)
    time.sleep(0.3)
    b, tb = commandstats(port), node_trips(http)
    t0 = time.monotonic()
    for i, s in enumerate(senders):
        webhook(url, start + i, s)
    wall_ms = (time.monotonic() - t0) * 1000 / len(senders)
    time.sleep(1.0)
    a, ta = commandstats(port), node_trips(http)
    mon.terminate(); mon.wait()
    log.seek(0)
    sent, scripts = {}, {}
    for l in log:
        m = re.match(r'[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"(.*)', l)
        if not m or m.group(2).upper() == "INFO":
            continue
        cmd = m.group(2).lower()
        if m.group(1) == "lua":
            continue
        sent[cmd] = sent.get(cmd, 0) + 1
        if cmd == "evalsha":
            args = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(3))
            key = args[2] if len(args) > 2 and args[1] != "0" else "-"
            kind = re.sub(r"\{[^}]*\}", "{}", key)
            kind = re.sub(r"[0-9a-f]{32}$", "<id>", kind)
            scripts[kind] = scripts.get(kind, 0) + 1
    n = len(senders)
    d = {k: (a[k][0] - b.get(k, (0, 0))[0], a[k][1] - b.get(k, (0, 0))[1]) for k in a}
    d = {k: v for k, v in d.items() if v[0] > 0}
    return name, n, d, (ta - tb) / n, wall_ms, sent, scripts


def main():
    binary = sys.argv[1]
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 200
    rport, hport = free_port(), free_port()
    tmp = tempfile.mkdtemp()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    conf = os.path.join(tmp, "cost.toml")
    with open(conf, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{hport}"\n[store]\nbackend = "redis"\n[redis]\n'
                f'url = "redis://127.0.0.1:{rport}"\n[auth]\ntoken_secret = "{"s" * 40}"\n'
                f'[limits]\napi_rate_per_sec = 0\nprovider_rate_per_sec = 0\n'
                f'[media]\ndir = "{tmp}/media"\nshared = true\n[[tenants]]\nname = "cost"\napi_keys = ["{API_KEY}"]\n'
                f'[log]\nfilter = "warn"\n')
    node = subprocess.Popen([binary, "--config", conf, "serve"], stdout=subprocess.DEVNULL)
    http = f"http://127.0.0.1:{hport}"
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(http + "/readyz"); break
            except Exception:
                time.sleep(0.05)
        acc = post_json(http, "/v1.0/conversation_accounts", {
            "type": "tel", "provider": "twilio", "name": "cost", "address": "+15005550006",
            "credentials": {"account_sid": "AC" + "0" * 32, "auth_token": TOKEN},
            "api_base_url": "http://127.0.0.1:9"})
        url = f"{http}/v1.0/hooks/twilio/{acc['id']}"
        # Warm-up: script cache, account cache, connections.
        for i in range(5):
            webhook(url, 10_000_000 + i, "+1777%07d" % i)
        # Timed passes without MONITOR (a monitor slows every command, a script's inner ones
        # inside its EVALSHA's time); counted passes with it, on other senders.
        senders = ["+1666%07d" % i for i in range(n)]
        others = ["+1667%07d" % i for i in range(n)]
        timed = [phase("new sender", rport, http, url, senders, 0, False),
                 phase("known sender", rport, http, url, senders, n, False)]
        counted = [phase("new sender", rport, http, url, others, 2 * n, True),
                   phase("known sender", rport, http, url, others, 3 * n, True)]
        results = [t[:5] + c[5:] for t, c in zip(timed, counted)]
        for name, cnt, d, trips, wall_ms, sent, scripts in results:
            evalsha = d.get("evalsha", (0, 0))
            # The node's own commands: what is not run inside a script. Approximated as every
            # command minus the script-inner ones, which Redis counts under their own names;
            # we cannot split them from INFO alone, so usec is taken as evalsha's plus the
            # node-sent non-script commands (reported separately below).
            total_calls = sum(c for c, _ in d.values())
            print(f"## {name}: {cnt} webhooks, sequential, {wall_ms:.2f} ms each (wall, timed pass)")
            print(f"  EVALSHA (script runs) per webhook: {evalsha[0] / cnt:.2f}, usec {evalsha[1] / cnt:.1f}")
            print(f"  all commands per webhook (script-inner included): {total_calls / cnt:.2f}")
            print(f"  node round trips (commands + pipelines sent) per webhook: {trips:.2f}")
            # Redis µs per webhook: evalsha's own usec (its inner commands included) plus, for every
            # other command the node sent itself (MONITOR, not `lua`), its calls x mean usec.
            redis_us = evalsha[1]
            for k, c in sent.items():
                if k != "evalsha" and k in d:
                    redis_us += c * d[k][1] / d[k][0]
            print(f"  commands sent by the node per webhook (MONITOR, counted pass): {sum(sent.values()) / cnt:.2f}")
            print(f"  Redis usec per webhook (evalsha + node-sent commands, commandstats): {redis_us / cnt:.1f}")
            print("  script runs by first key:", {k: round(v / cnt, 2) for k, v in sorted(scripts.items())})
            print("  node-sent commands:", {k: round(v / cnt, 2) for k, v in sorted(sent.items())})
            for k, (c, u) in sorted(d.items(), key=lambda kv: -kv[1][1]):
                print(f"    {k:24} calls/webhook {c / cnt:6.2f}  usec/webhook {u / cnt:8.1f}")
        info = redis_cli(rport, "INFO", "cpu")
        print(info.strip().splitlines()[1:3])
    finally:
        node.terminate(); node.wait()
        redis.terminate(); redis.wait()


if __name__ == "__main__":
    main()
