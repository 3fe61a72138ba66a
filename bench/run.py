#!/usr/bin/python3
"""maild's benchmark driver (docs/PERFORMANCE.md).

By default it starts maild from a build tree (as the integration tests do:
tests/integration/maildtest.py) with a domain and an account, runs every
scenario in SCENARIOS against it with the load generator (build/bench/
maild-load), and measures, for each:

  - messages per second accepted (the 250 after the end of data) and
    delivered (files in the account's Maildir new/),
  - the latency of a whole transaction (MAIL sent to that 250), p50/p99,
  - CPU seconds of the whole family per 1,000 messages,

and the memory of the family (PSS and RSS of maild and every process under
it) idle, and per connection with many idle SMTP connections open.

  --target HOST:PORT --rcpt ADDRESS runs the same scenarios against any
  server (Postfix, OpenSMTPD, ...); --pids and --maildir add its CPU, memory
  and delivery figures.
  --quick runs one tiny scenario of each kind (what `make check` runs):
  figures are printed, never judged; it fails only when the pipeline does
  not work (nothing accepted, or, with maild, nothing delivered).

Prints a table and writes every figure as JSON to bench/results/.
Durable settings: maild always syncs what it accepts before answering 250
and what it delivers before removing it from the queue; nothing here turns
that off.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# The scenarios, in the order they run. mode "load": `sessions` concurrent
# sessions send `size`-byte messages back to back for the run's duration;
# mode "idle": `sessions` connections are opened, introduced and held.
# protocol names the load generator's module (bench/load/protocols.cc) and
# the listener it uses; a protocol added there is a row added here.
# The idle scenario runs first, on a fresh family: after the load, memory
# freed by the transactions would be reused by the connections and hide
# their cost.
SCENARIOS = [
    {"name": "smtp idle 1000", "protocol": "smtp", "mode": "idle", "sessions": 1000},
] + [
    {"name": f"smtp {sessions}x{size}", "protocol": "smtp", "mode": "load", "sessions": sessions, "size": size}
    for size in ("1K", "10K", "100K") for sessions in (1, 10, 50)
]

QUICK_SCENARIOS = [
    {"name": "smtp idle 20", "protocol": "smtp", "mode": "idle", "sessions": 20},
    {"name": "smtp 2x1K", "protocol": "smtp", "mode": "load", "sessions": 2, "size": "1K"},
]

BENCH_DOMAIN = "bench.example"
BENCH_USER = "load"
BENCH_RCPT = f"{BENCH_USER}@{BENCH_DOMAIN}"

# Room for the idle scenario's connections, all from 127.0.0.1. Cheap
# password hashing: the bench never logs in, and account creation should
# not take a second of the run.
MAILD_BENCH_CONFIG = """max-connections 4000
max-connections-per-address 4000
argon2-memory 8M
argon2-iterations 1
"""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(text):
    print(text, file=sys.stderr, flush=True)


# Processes: a server is a tree of them (maild and its roles, Postfix's
# master and its daemons); every figure is for the whole tree.

def descendants(pid):
    """pid and every process under it, from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def family_pids(roots):
    pids = []
    for root in roots:
        pids.extend(descendants(root))
    return sorted(set(pids))


def cpu_seconds(roots):
    """User and system time of the tree, with that of children it reaped."""
    total = 0
    for pid in family_pids(roots):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "(comm)": state is field 3, utime..cstime are fields 14-17.
        total += sum(int(v) for v in fields[11:15])
    return total / CLOCK_TICKS


def memory_kib(roots):
    """{"private": KiB, "pss": KiB, "rss": KiB, "processes": n} for the
    tree, from /proc/<pid>/smaps_rollup. private: pages no other process
    maps (a connection's buffers and state are private to its process);
    PSS: private plus each process's share of what it shares (the same
    binary, libraries), which moves as unrelated processes map the same
    libraries; RSS: shared pages counted in every process."""
    totals = {"private": 0, "pss": 0, "rss": 0}
    count = 0
    for pid in family_pids(roots):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("Private_Clean", "Private_Dirty"):
                        totals["private"] += int(value.split()[0])
                    elif key in ("Pss", "Rss"):
                        totals[key.lower()] += int(value.split()[0])
            count += 1
        except OSError:
            pass
    return dict(totals, processes=count)


# Targets: where the load goes, and what can be watched there.

class MaildTarget:
    """A maild family started from a build tree for the run."""

    def __init__(self, build_dir):
        sys.path.insert(0, os.path.join(SOURCE_DIR, "tests/integration"))
        os.environ["MAILD_BUILD_DIR"] = build_dir
        os.environ["MAILD_SOURCE_DIR"] = SOURCE_DIR
        import maildtest  # reads the two variables above when imported
        self.maildtest = maildtest
        self.family = maildtest.Family(extra_config=MAILD_BENCH_CONFIG)
        self.description = f"maild (build tree {build_dir})"

    def __enter__(self):
        self.family.__enter__()
        try:
            self.family.ok("domain", "add", BENCH_DOMAIN)
            self.family.ok("user", "add", BENCH_RCPT, password="bench password, never used")
            self.family.start()
        except BaseException:
            self.family.__exit__(*sys.exc_info())
            raise
        self.host, self.rcpt = "127.0.0.1", BENCH_RCPT
        self.maildir = self.family.maildir(BENCH_RCPT)
        return self

    def __exit__(self, *exc):
        return self.family.__exit__(*exc)

    def port(self, protocol):
        return self.family.ports[protocol]

    def roots(self):
        return [self.family.proc.pid]

    def check_alive(self):
        if self.family.proc.poll() is not None:
            raise SystemExit(f"maild exited ({self.family.proc.returncode}):\n" + self.family.log_text()[-4000:])


class RemoteTarget:
    """Any server at HOST:PORT; --pids and --maildir say what to watch."""

    def __init__(self, address, rcpt, pids, maildir):
        host, _, port = address.rpartition(":")
        self.host, self.port_number, self.rcpt = host.strip("[]"), int(port), rcpt
        self.pids, self.maildir = pids, maildir
        self.description = f"{address} (recipient {rcpt})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def port(self, protocol):
        return self.port_number

    def roots(self):
        return self.pids

    def check_alive(self):
        pass


# The Maildir: deliveries are counted as files in new/.

def count_new(maildir):
    try:
        return sum(1 for _ in os.scandir(os.path.join(maildir, "new")))
    except FileNotFoundError:
        return 0


def empty_maildir(maildir):
    """Removes delivered messages, so that new/ stays small between
    scenarios (a directory of 100,000 files slows the server and the count)."""
    for sub in ("new", "cur"):
        path = os.path.join(maildir, sub)
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            continue
        for entry in entries:
            os.unlink(entry.path)


def wait_delivered(maildir, before, accepted, timeout):
    """(delivered, unix time of the last delivery): waits until `accepted`
    more files are in new/ than `before`, or timeout. The last delivery's
    time is new/'s modification time (a rename into it sets it), so the
    count need not be polled while the load runs."""
    deadline = time.monotonic() + timeout
    delivered = count_new(maildir) - before
    while delivered < accepted and time.monotonic() < deadline:
        time.sleep(0.1)
        delivered = count_new(maildir) - before
    try:
        last = os.stat(os.path.join(maildir, "new")).st_mtime_ns / 1e9
    except FileNotFoundError:
        last = None
    return delivered, last


# Running the load generator.

def loadgen_command(args, target, scenario, seconds):
    cmd = [args.loadgen, "--protocol", scenario["protocol"], "--mode", scenario["mode"],
           "--connect", f"{target.host}:{target.port(scenario['protocol'])}",
           "--sessions", str(scenario["sessions"])]
    if scenario["mode"] == "load":
        cmd += ["--rcpt", target.rcpt, "--size", scenario["size"], "--duration", str(seconds)]
    return cmd


def run_load(args, target, scenario, seconds):
    before_count = count_new(target.maildir) if target.maildir else 0
    roots = target.roots()
    cpu_before = cpu_seconds(roots) if roots else None
    result = subprocess.run(loadgen_command(args, target, scenario, seconds), capture_output=True, text=True,
                            timeout=seconds + 120)
    if result.returncode != 0:
        raise SystemExit(f"maild-load failed ({result.returncode}): {result.stderr}")
    figures = json.loads(result.stdout)
    accepted = figures["accepted"]
    if target.maildir:
        delivered, last = wait_delivered(target.maildir, before_count, accepted,
                                         timeout=max(30, accepted / 100))
        figures["delivered"] = delivered
        # Delivered per second: from the load's start to the last delivery.
        if delivered and last and last > figures["started_unix"]:
            figures["delivered_per_s"] = delivered / (last - figures["started_unix"])
            figures["delivery_lag_s"] = max(0.0, last - figures["started_unix"] - figures["elapsed_s"])
        empty_maildir(target.maildir)
    if cpu_before is not None and accepted:
        # After delivery: the family's work for these messages is done.
        figures["server_cpu_s"] = cpu_seconds(roots) - cpu_before
        figures["server_cpu_s_per_1000"] = figures["server_cpu_s"] * 1000 / accepted
    target.check_alive()
    return figures


def run_idle(args, target, scenario):
    roots = target.roots()
    figures = {}
    if roots:
        figures["memory_before_kib"] = memory_kib(roots)
    proc = subprocess.Popen(loadgen_command(args, target, scenario, 0), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        event = json.loads(proc.stdout.readline() or "{}")
        if event.get("event") != "established":
            raise SystemExit(f"maild-load (idle) did not report its connections: {proc.stderr.read()}")
        # Let the server finish what each new connection set off (lookups,
        # log lines) before looking at its memory.
        time.sleep(1)
        if roots:
            figures["memory_with_connections_kib"] = memory_kib(roots)
        proc.stdin.close()
        figures.update(json.loads(proc.stdout.read()))
    finally:
        if not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"maild-load (idle) failed ({proc.returncode}): {proc.stderr.read()}")
    proc.stderr.close()
    established = figures.get("established", 0)
    if roots and established:
        before, after = figures["memory_before_kib"], figures["memory_with_connections_kib"]
        figures["per_connection_kib"] = {key: (after[key] - before[key]) / established
                                         for key in ("private", "pss", "rss")}
    target.check_alive()
    return figures


# Output.

def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def memory_text(m, digits=0):
    text = (f"private {fmt(m['private'], digits)} KiB, PSS {fmt(m['pss'], digits)} KiB, "
            f"RSS {fmt(m['rss'], digits)} KiB")
    return text + (f" ({m['processes']} processes)" if "processes" in m else "")


def print_table(report):
    print(f"\nmaild bench: {report['target']}")
    print(f"{report['host']['cpus']} CPUs, {report['host']['kernel']}, {report['started']}\n")
    header = ("scenario", "accepted/s", "delivered/s", "p50 ms", "p99 ms", "CPU s/1000", "errors")
    rows = []
    for s in report["scenarios"]:
        if s["mode"] != "load":
            continue
        f = s["figures"]
        errors = f["refused"] + f["failed_sessions"]
        rows.append((s["name"], fmt(f["msgs_per_s"]), fmt(f.get("delivered_per_s")),
                     fmt(f["latency_ms"]["p50"], 1), fmt(f["latency_ms"]["p99"], 1),
                     fmt(f.get("server_cpu_s_per_1000"), 2), str(errors)))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    for s in report["scenarios"]:
        if s["mode"] != "idle":
            continue
        f = s["figures"]
        print(f"\n{s['name']}: {f.get('established', 0)} of {s['sessions']} established, "
              f"{f.get('failed_sessions', 0)} failed")
        if "memory_before_kib" in f:
            m0, m1 = f["memory_before_kib"], f["memory_with_connections_kib"]
            print(f"  family idle:          {memory_text(m0)}")
            print(f"  with the connections: {memory_text(m1)}")
        if "per_connection_kib" in f:
            print(f"  per idle connection:  {memory_text(f['per_connection_kib'], 1)}")
    errors = {}
    for s in report["scenarios"]:
        for text, count in s["figures"].get("errors", {}).items():
            errors[text] = errors.get(text, 0) + count
    if errors:
        print("\nerrors:")
        for text, count in sorted(errors.items()):
            print(f"  {count:6d}  {text}")


def problems(report, expect_delivery):
    """Why the run did not work (the pipeline, not the speed)."""
    found = []
    for s in report["scenarios"]:
        f = s["figures"]
        if f.get("failed_sessions"):
            found.append(f"{s['name']}: {f['failed_sessions']} sessions failed")
        if s["mode"] == "load":
            if not f["accepted"]:
                found.append(f"{s['name']}: no message accepted")
            if f["refused"]:
                found.append(f"{s['name']}: {f['refused']} messages refused")
            if expect_delivery and f.get("delivered", 0) < f["accepted"]:
                found.append(f"{s['name']}: {f.get('delivered', 0)} of {f['accepted']} delivered")
        elif f.get("established", 0) < s["sessions"]:
            found.append(f"{s['name']}: {f.get('established', 0)} of {s['sessions']} connections established")
    return found


def main():
    parser = argparse.ArgumentParser(description="maild's benchmark (docs/PERFORMANCE.md)")
    parser.add_argument("--build-dir", default=os.environ.get("MAILD_BUILD_DIR", os.path.join(SOURCE_DIR, "build")),
                        help="the build tree with sbin/maild and bench/maild-load (./build)")
    parser.add_argument("--target", metavar="HOST:PORT", help="benchmark this server instead of starting maild")
    parser.add_argument("--rcpt", help="with --target: the recipient every message goes to")
    parser.add_argument("--pids", default="", help="with --target: the server's top process ids (comma-separated): "
                        "CPU and memory of them and everything under them")
    parser.add_argument("--maildir", help="with --target: the recipient's Maildir, to count deliveries")
    parser.add_argument("--seconds", type=float, default=5, help="how long each load scenario sends (5)")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    parser.add_argument("--quick", action="store_true", help="one tiny scenario of each kind (make check)")
    parser.add_argument("--results-dir", default=os.path.join(SOURCE_DIR, "bench/results"),
                        help="where the JSON goes (bench/results)")
    args = parser.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    args.loadgen = os.path.join(args.build_dir, "bench/maild-load")
    if not os.access(args.loadgen, os.X_OK):
        parser.error(f"no load generator at {args.loadgen}: build first (make build)")
    if args.target and not args.rcpt:
        parser.error("--target needs --rcpt")

    scenarios = QUICK_SCENARIOS if args.quick else SCENARIOS
    if args.only:
        scenarios = [s for s in scenarios if args.only in s["name"]]
    seconds = 1 if args.quick else args.seconds

    if args.target:
        pids = [int(p) for p in args.pids.split(",") if p]
        target = RemoteTarget(args.target, args.rcpt, pids, args.maildir)
    else:
        target = MaildTarget(args.build_dir)

    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "seconds_per_scenario": seconds,
        "target": target.description,
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine()},
        "scenarios": [],
    }
    with target:
        if target.roots():
            report["family_idle_kib"] = memory_kib(target.roots())
        for scenario in scenarios:
            log(f"bench: {scenario['name']} ...")
            if scenario["mode"] == "load":
                figures = run_load(args, target, scenario, seconds)
            else:
                figures = run_idle(args, target, scenario)
            report["scenarios"].append(dict(scenario, figures=figures))

    print_table(report)
    if "family_idle_kib" in report:
        print(f"\nfamily idle at start: {memory_text(report['family_idle_kib'])}")
    os.makedirs(args.results_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = os.path.join(args.results_dir, f"{stamp}{'-quick' if args.quick else ''}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print(f"\nresults: {path}")

    found = problems(report, expect_delivery=bool(target.maildir))
    for problem in found:
        print(f"bench: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
