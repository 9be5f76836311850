#!/usr/bin/env python3
"""The original approach bench/function.sh compares with: a Python function that checks its
URLs one after the other with urllib, as the first version of this monitoring ran. Exits 1
when any URL fails (a status other than 200, an error, more than 10 s).

    function_original.py URL...
"""
import sys
import urllib.request

failed = 0
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            ok = r.status == 200
    except Exception as e:  # a down target is a result, not a crash
        print(f"{url}: {e}", file=sys.stderr)
        ok = False
    failed += not ok
sys.exit(1 if failed else 0)
