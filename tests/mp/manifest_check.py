# hal/manifest.check on the unix port, in the folder it runs in (a flashed root):
#
#   micropython manifest_check.py [ROOT ...]
#
# Prints one JSON line: [check(""), check(ROOT), ...] ("" is what a board asks: its working folder).
import json
import sys

from hal.manifest import check

print(json.dumps([check(root) for root in [""] + sys.argv[1:]]))
