"""Stand-in for the get-pip.py bootstrap script ansible-test downloads from
a host this machine cannot reach: it runs pip from Debian's own wheel
(python3-pip-whl, /usr/share/python-wheels) to install the pip version
ansible-test asks for, from PyPI as usual. Takes get-pip.py's arguments."""

import glob
import runpy
import sys

wheels = sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))
if not wheels:
    sys.exit("no pip wheel in /usr/share/python-wheels: apt-get install python3-pip-whl")
sys.path.insert(0, wheels[-1])
# get-pip.py's own options, which pip install does not know.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
