#!/usr/bin/python3
"""Runs the end-to-end tests: every test_* function of tests/e2e/test_*.py.

    /usr/bin/python3 tests/e2e/run.py [-k SUBSTRING]... [--list]

A test runs once per protocol generation it applies to (its module's
GENERATIONS, default (1,), or @harness.generations): as Flyte 1 under its name,
and as Flyte 2 under its name with "_v2" appended when it runs as both.

Prints `ok <name>` or `FAIL <name>: <reason>` per test (with the daemon's last
stderr lines indented below a failure) and ends with exactly one line
`N passed, N failed`. Exit status 1 if anything failed or nothing ran.
"""

import argparse
import glob
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

VERBOSE = os.environ.get("E2E_VERBOSE", "") == "1"  # print calls and daemon logs of every test
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


def main():
    signal.signal(signal.SIGTERM, interrupted)
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    parser.add_argument("--list", action="store_true")
    opts = parser.parse_args()

    tests = [(n, f, g) for n, f, g in discover() if not opts.k or any(k in n for k in opts.k)]
    if opts.list:
        for name, _, _ in tests:
            print(name)
        return 0
    passed = failed = 0
    try:
        suite = harness.Suite()
    except Exception as e:
        print("FAIL setup: %s" % e)
        print("0 passed, 1 failed")
        return 1
    started = time.monotonic()
    try:
        for name, fn, generation in tests:
            t0 = time.monotonic()
            reason, context = run_one(suite, name, fn, generation)
            took = time.monotonic() - t0
            if took > SLOW_SECONDS:
                print("# %s took %.1f s" % (name, took))
            if reason is None:
                passed += 1
                print("ok %s" % name, flush=True)
                for line in context:
                    print(line, flush=True)
            else:
                failed += 1
                suite.keep = suite.keep or bool(os.environ.get("KEEP"))
                print("FAIL %s: %s" % (name, reason.replace("\n", " ")), flush=True)
                for line in context:
                    print(line, flush=True)
    finally:
        suite.close()
    print("# e2e took %.1f s" % (time.monotonic() - started))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
