#!/usr/bin/env python3
"""The admin token grant's CPU beside client_credentials (issue 18): the demo config on free
ports, a bootstrap admin, then sequential grants of each kind; CPU µs per grant from the
gateway's /proc/PID/stat (utime + stime). usage: admin_grant.py BIN [N_ADMIN] [N_CC]"""
import os, shutil, socket, ssl, subprocess, sys, tempfile, time, urllib.request, urllib.parse

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
binary, n_admin, n_cc = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30, int(sys.argv[3]) if len(sys.argv) > 3 else 300

def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

d = tempfile.mkdtemp(prefix="pt-admin-grant-")
for sub in ("routes", "policies", "realms"):
    shutil.copytree(os.path.join(repo, sub), os.path.join(d, sub))
pub, mgmt, internal, redirect = free(), free(), free(), free()
conf = open(os.path.join(repo, "portcullis.toml")).read()
for old, new in (("127.0.0.1:8443", f"127.0.0.1:{pub}"), ("127.0.0.1:9000", f"127.0.0.1:{mgmt}"),
                 ("127.0.0.1:8081", f"127.0.0.1:{internal}"), ("127.0.0.1:8080", f"127.0.0.1:{redirect}"),
                 ("localhost:8443", f"localhost:{pub}"), ("[9000, 8081]", f"[{mgmt}, {internal}]"),
                 ("worker_threads = 0", "worker_threads = 1"), ("watch = true", "watch = false")):
    conf = conf.replace(old, new)
open(os.path.join(d, "portcullis.toml"), "w").write(conf)
env = dict(os.environ, PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME="admin", PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="admin")
gw = subprocess.Popen([binary, "run", "--config", "portcullis.toml"], cwd=d, env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def post(url, form, **kw):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
    with urllib.request.urlopen(req, context=ctx if url.startswith("https") else None) as r:
        assert r.status == 200, r.status
        return r.read()

def cpu():
    f = open(f"/proc/{gw.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{mgmt}/health/ready"); break
        except Exception:
            time.sleep(0.2)
    admin = (f"http://127.0.0.1:{mgmt}/realms/master/protocol/openid-connect/token",
             {"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin"})
    cc = (f"https://127.0.0.1:{pub}/auth/realms/myrealm/protocol/openid-connect/token",
          {"grant_type": "client_credentials", "client_id": "svc-reports", "client_secret": "svc-secret"})
    login = (f"https://127.0.0.1:{pub}/auth/realms/myrealm/protocol/openid-connect/token",
             {"grant_type": "password", "client_id": "myclient", "client_secret": "my-client-secret",
              "username": "alice", "password": "password"})
    for name, (url, form), n in (("admin token (master, admin-cli, password)", admin, n_admin),
                                 ("password grant (myrealm, alice)", login, n_admin),
                                 ("client_credentials (myrealm)", cc, n_cc)):
        for _ in range(3):
            post(url, form)
        c0, t0 = cpu(), time.time()
        for _ in range(n):
            post(url, form)
        c1, t1 = cpu(), time.time()
        print(f"{name:45s} {n:5d} grants  {(c1 - c0) / n * 1e6:9.0f} µs CPU/grant  {(t1 - t0) / n * 1e3:7.2f} ms wall/grant")
finally:
    gw.terminate(); gw.wait(); shutil.rmtree(d, ignore_errors=True)
