# pyinfra's version of the 10-task benchmark workload (see bench/README.md).
# Run by bench/run as:
#   pyinfra $STATE/pyinfra-inventory.py deploy.py --parallel N -y
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

R = f"/tmp/grbench/{host.name}"

files.directory(name="1 dirs", path=f"{R}/etc/sysctl.d")

# 2. pyinfra has no "creates": the idiomatic guard is a fact check
if host.get_fact(File, path=f"{R}/etc/fstab") is None:
    files.put(
        name="2 fstab, created once",
        src=StringIO("UUID=abc / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"),
        dest=f"{R}/etc/fstab",
    )

files.replace(
    name="3 swap off",
    path=f"{R}/etc/fstab",
    text=r"^([^#].*[[:space:]]swap[[:space:]].*)$",
    replace=r"# \1",
    extended_regex=True,
)

for i, entry in enumerate(
    ["10.0.0.1 master", "10.0.0.2 worker", "10.0.0.3 rancher-demo.domain.test"], start=4
):
    files.line(
        name=f"{i} hosts {entry}",
        path=f"{R}/etc/hosts",
        line=entry,
        escape_regex_characters=True,  # the line is literal text, not a regex
    )

files.put(
    name="7 k8s sysctl",
    src=StringIO("net.bridge.bridge-nf-call-iptables = 1\n"),
    dest=f"{R}/etc/sysctl.d/90-k8s.conf",
)

files.put(
    name="8 resolv.head",
    src=StringIO("nameserver 192.0.2.53\nnameserver 192.0.2.54\n"),
    dest=f"{R}/etc/resolv.head",
    mode="644",
)

if host.get_fact(File, path=f"{R}/installed") is None:
    server.shell(name="9 installed", commands=[f"touch {R}/installed"])

# 10. read-only check (pyinfra has no changed_when: it always runs the command)
server.shell(name="10 check", commands=[f"test -d {R}"])
