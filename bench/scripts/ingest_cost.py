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

With `--callgrind`, redis-server runs under valgrind's callgrind and each timed phase also
reports Redis's instructions per webhook (counters zeroed at the phase's start, dumped at its
end: `callgrind_control`), a figure the machine's load does not change.

Usage: ingest_cost.py path/to/switchboard [--n 200] [--callgrind]
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


def slowlog(port):
    """SLOWLOG GET as [id, time, µs, [args]] entries (redis-cli's plain output, parsed)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "--json", "SLOWLOG", "GET", "-1"], capture_output=True, text=True).stdout
    try:
        return [(e[0], e[1], e[2], e[3]) for e in json.loads(out)]
    except Exception:
        return []


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


CALLGRIND = None  # the directory of callgrind's dumps, when redis-server runs under it


def callgrind(port, what):
    """Zeroes (`-z`) or dumps (`-d`) redis-server's callgrind counters; on a dump, returns the
    instructions counted since the last zeroing."""
    pid = redis_cli(port, "INFO", "server").split("process_id:")[1].split()[0]
    before = set(os.listdir(CALLGRIND))
    subprocess.run(["callgrind_control", what, pid], capture_output=True)
    if what != "-d":
        return None
    for _ in range(100):
        new = [f for f in os.listdir(CALLGRIND) if f not in before and f.startswith("cg.out")]
        if new:
            time.sleep(0.5)
            for l in open(os.path.join(CALLGRIND, new[0])):
                if l.startswith("totals:") or l.startswith("summary:"):
                    return int(l.split()[1])
        time.sleep(0.1)
    return None


def phase(name, port, http, url, senders, start, monitor):
    # Let background work of the previous phase (event batches, timers) settle.
    time.sleep(1.0)
    log = open(os.path.join(tempfile.mkdtemp(), "monitor.log"), "w+")
    mon = subprocess.Popen(["redis-cli", "-p", str(port), "MONITOR"] if monitor else ["sleep", "3600"], stdout=log)
    time.sleep(0.3)
    # SLOWLOG costs instructions of its own: off under callgrind.
    redis_cli(port, "CONFIG", "SET", "slowlog-log-slower-than", "-1" if CALLGRIND or monitor else "0")
    redis_cli(port, "CONFIG", "SET", "slowlog-max-len", "1000000")
    redis_cli(port, "SLOWLOG", "RESET")
    b, tb = commandstats(port), node_trips(http)
    if CALLGRIND and not monitor:
        callgrind(port, "-z")
    t0 = time.monotonic()
    for i, s in enumerate(senders):
        webhook(url, start + i, s)
    wall_ms = (time.monotonic() - t0) * 1000 / len(senders)
    time.sleep(1.0)
    instr = callgrind(port, "-d") if CALLGRIND and not monitor else None
    a, ta = commandstats(port), node_trips(http)
    mon.terminate(); mon.wait()
    # Per script, by its first key: the median run time (SLOWLOG with a 0 threshold).
    runs = {}
    for e in slowlog(port):
        args = e[3]
        if args and args[0].lower() == "evalsha" and len(args) > 3 and args[2] != "0":
            kind = re.sub(r"[0-9a-f]{32}$", "<id>", re.sub(r"\{[^}]*\}", "{}", args[3]))
            runs.setdefault(kind, []).append(e[2])
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
    med = {k: (sorted(v)[len(v) // 2], len(v)) for k, v in runs.items()}
    return name, n, d, (ta - tb) / n, wall_ms, med, instr, sent, scripts


def main():
    binary = sys.argv[1]
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 200
    rport, hport = free_port(), free_port()
    tmp = tempfile.mkdtemp()
    global CALLGRIND
    CALLGRIND = tmp if "--callgrind" in sys.argv else None
    wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out"] if CALLGRIND else []
    redis = subprocess.Popen(wrap + ["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if redis_cli(rport, "PING").strip() == "PONG":
            break
        time.sleep(0.1)
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
        results = [t[:7] + c[7:] for t, c in zip(timed, counted)]
        for name, cnt, d, trips, wall_ms, med, instr, sent, scripts in results:
            evalsha = d.get("evalsha", (0, 0))
            # `commandstats` counts a script's inner commands under their own names too: the
            # total below includes them; the µs figure does not count them twice (see below).
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
            if instr:
                print(f"  Redis instructions per webhook (callgrind, timed pass): {instr / cnt / 1000:.1f} k")
            print("  median µs per script run (SLOWLOG, timed pass):", {k: v[0] for k, v in sorted(med.items()) if v[1] >= cnt // 2})
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
