#!/usr/bin/env python3
"""One invocation of a `watchpost function --runtime http` for bench/function.sh: POST BODY to
http://127.0.0.1:PORT/ and write the answer to OUT; print "T_SENT T_ANSWERED STATUS" (epoch
seconds). The clock is read just before the request is written on an already open connection,
so the figures don't include the client's own start-up (curl's is ~10 ms here).

    function_invoke.py PORT BODY OUT
"""
import http.client
import sys
import time

PORT, BODY, OUT = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
conn.connect()
sent = time.time()
conn.request("POST", "/", body=BODY, headers={"Content-Type": "application/json"})
response = conn.getresponse()
answer = response.read()
answered = time.time()
with open(OUT, "wb") as f:
    f.write(answer)
print(f"{sent:.6f} {answered:.6f} {response.status}")
