#!/usr/bin/python3
"""Runs the end-to-end tests: every test_* function of tests/e2e/test_*.py.

    /usr/bin/python3 tests/e2e/run.py [-k SUBSTRING]... [--list] [--log-format text|json|both]
                                      [--jobs N]

A test runs once per protocol generation it applies to (its module's GENERATIONS, default
(1,), or @harness.generations): as Flyte 1 under its name, and as Flyte 2 under its name with
"_v2" appended when it runs as both.

Every test runs once per daemon log format (default both: the whole suite with key=value
logs and again with JSON logs, each daemon at debug level), so the canary check of each
scenario reads both formats. With --jobs 2 (the default; E2E_JOBS) the two passes run at
once, each in its own process. Prints `ok <name>` (`ok <name> [json]` in the JSON pass) or
`FAIL <name>: <reason>` per test (with the daemon's last stderr lines indented below a
failure) and ends with exactly one line `N passed, N failed`. Exit status 1 if anything
failed or nothing ran.
"""

import argparse
import fcntl
import glob
import importlib
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

VERBOSE = os.environ.get("E2E_VERBOSE", "") == "1"  # print calls and daemon logs of every test
# Tests that take a core each (valgrind): parallel passes run them one at a time, through a
# lock file the parent names in E2E_EXCLUSIVE_LOCK, so their timing checks see one load.
EXCLUSIVE_WORDS = ("valgrind",)
SLOW_SECONDS = 5.0 * harness.SCALE  # tests slower than this are reported (# lines)


def discover():
    """Gives (name, function, generation) for every test run, Flyte 1's first."""
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        module = importlib.import_module(os.path.basename(path)[:-3])
        default = getattr(module, "GENERATIONS", (1,))
        for name, fn in vars(module).items():
            if name.startswith("test_") and callable(fn):
                tests.append((fn.__code__.co_firstlineno, module.__name__, name[5:], fn,
                              getattr(fn, "generations", default)))
    # Source order inside a module, modules alphabetically; then each generation's run.
    tests.sort(key=lambda t: (t[1], t[0]))
    out = []
    for _, _, name, fn, gens in tests:
        for g in gens:
            out.append((name + ("_v2" if g == 2 and len(gens) > 1 else ""), fn, g))
    return out


def run_exclusive(suite, name, fn, generation):
    """run_one(), holding the parallel passes' lock when the test is one of the heavy ones."""
    lock_path = os.environ.get("E2E_EXCLUSIVE_LOCK")
    if not lock_path or not any(w in name for w in EXCLUSIVE_WORDS):
        return run_one(suite, name, fn, generation)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return run_one(suite, name, fn, generation)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_one(suite, name, fn, generation):
    t = harness.Test(suite, name, generation)
    reason = None
    try:
        fn(t)
    except harness.Failure as e:
        reason = str(e)
    except Exception as e:  # a bug in the test or an unexpected answer shape
        frame = traceback.extract_tb(e.__traceback__)[-1]
        reason = "%s: %s (%s:%d)" % (type(e).__name__, e, os.path.basename(frame.filename),
                                    frame.lineno)
    except BaseException:  # interrupted: stop this test's processes, then give up
        t.finish(failed=True)
        raise
    context = t.context() if reason else []
    if VERBOSE:
        context = ["    call: " + line[:300] for line in t.transcript
                   if " -> " in line or line.startswith("note:")] + t.context(40)
    try:
        problems = t.finish(failed=reason is not None)
        if reason and problems:
            reason += "; also: " + "; ".join(problems)
    except harness.Failure as e:
        reason = str(e)
        context = t.context()
    except Exception as e:
        reason = "cleanup: %s: %s" % (type(e).__name__, e)
    return reason, context


def interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run_passes_in_parallel(formats, opts):
    """Runs one child run.py per log format at once (the suite mostly waits on processes and
    sockets, so two passes take little longer than one) and prints their lines as they come;
    gives the exit status. Each child has its own temp dir, CA and daemons."""
    children = []
    harness.Protos()  # generated once for both passes
    os.environ["E2E_PROTOS_READY"] = "1"
    lock = tempfile.NamedTemporaryFile(prefix="fdc-e2e-lock.")
    os.environ["E2E_EXCLUSIVE_LOCK"] = lock.name
    for log_format in formats:
        cmd = [sys.executable, os.path.abspath(__file__), "--log-format", log_format, "--jobs", "1",
               "--tag", "" if log_format == formats[0] else " [%s]" % log_format]
        for k in opts.k:
            cmd += ["-k", k]
        children.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    sel = selectors.DefaultSelector()
    partial = {}
    for child in children:
        sel.register(child.stdout, selectors.EVENT_READ, child)
        partial[child] = b""
    passed = failed = 0
    summary = re.compile(rb"^(\d+) passed, (\d+) failed$")
    open_pipes = len(children)
    while open_pipes:
        for key, _ in sel.select():
            chunk = os.read(key.fileobj.fileno(), 65536)
            child = key.data
            if not chunk:
                sel.unregister(key.fileobj)
                open_pipes -= 1
                lines, partial[child] = [partial[child]] if partial[child] else [], b""
            else:
                lines = (partial[child] + chunk).split(b"\n")
                partial[child] = lines.pop()
            for line in lines:
                m = summary.match(line)
                if m:
                    passed += int(m.group(1))
                    failed += int(m.group(2))
                    continue
                sys.stdout.buffer.write(line + b"\n")
                sys.stdout.flush()
    codes = [child.wait() for child in children]
    lock.close()
    if any(codes) and not failed:
        failed += 1
        print("FAIL a pass ended with exit codes %s" % codes)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


def main():
    signal.signal(signal.SIGTERM, interrupted)
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--log-format", choices=("text", "json", "both"),
                        default=os.environ.get("E2E_LOG_FORMATS", "both"),
                        help="the daemons' log format; both: the suite once per format")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("E2E_JOBS", "2")),
                        help="with both formats, run the passes at once (default 2)")
    parser.add_argument("--tag", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    formats = ("text", "json") if opts.log_format == "both" else (opts.log_format,)

    tests = [(n, f, g) for n, f, g in discover() if not opts.k or any(k in n for k in opts.k)]
    if opts.list:
        for name, _, _ in tests:
            print(name)
        return 0
    if len(formats) > 1 and opts.jobs > 1 and tests:
        return run_passes_in_parallel(formats, opts)
    passed = failed = 0
    try:
        suite = harness.Suite()
    except Exception as e:
        print("FAIL setup: %s" % e)
        print("0 passed, 1 failed")
        return 1
    started = time.monotonic()
    try:
        for log_format in formats:
            harness.LOG_FORMAT = log_format
            tag = opts.tag if opts.tag is not None else (
                "" if log_format == formats[0] else " [%s]" % log_format)
            for name, fn, generation in tests:
                t0 = time.monotonic()
                reason, context = run_exclusive(suite, name, fn, generation)
                took = time.monotonic() - t0
                if took > SLOW_SECONDS:
                    print("# %s%s took %.1f s" % (name, tag, took))
                if reason is None:
                    passed += 1
                    print("ok %s%s" % (name, tag), flush=True)
                    for line in context:
                        print(line, flush=True)
                else:
                    failed += 1
                    suite.keep = suite.keep or bool(os.environ.get("KEEP"))
                    print("FAIL %s%s: %s" % (name, tag, reason.replace("\n", " ")), flush=True)
                    for line in context:
                        print(line, flush=True)
    finally:
        suite.close()
    print("# e2e took %.1f s" % (time.monotonic() - started))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
