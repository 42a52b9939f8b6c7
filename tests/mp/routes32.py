# Which command families a booted pump holds (tests/firmware/test_command_routes.py):
#
#   node tests/mp/run.mjs ROOT tests/mp/routes32.py bench/mp/heap32*.py bench/mp/program_items.py
#
# The boot routes every command from commands._ROUTES and imports no family: each comes with its
# first command and goes at a command of another. Prints the families loaded after the boot, after
# a STATUS, after a THERAPY (the alarms family's) and after an AUTH_BEGIN (the session family's), a
# line each, and THERAPY's reply's mode.

import gc
import sys

from heap32_host import Host, Unmeasured
from heap32_pump import Counter, boot, make_hardware


def families():
    return " ".join(sorted(m[len("firmware.commands.") :] for m in sys.modules if m.startswith("firmware.commands.")))


def steps():
    from firmware import codec

    host = Host(Unmeasured(), Counter(7))
    app = boot(make_hardware())
    host.attach(app)
    gc.collect()
    yield
    print("boot:" + "".join(" " + f for f in families().split()))
    yield from host.request(codec.STATUS)
    print("status:", families())
    therapy = yield from host.request(codec.THERAPY)
    print("therapy:", families())
    yield from host.request(codec.AUTH_BEGIN, (1,))
    print("auth-begin:", families())
    print("mode", therapy[0 + 2] if len(therapy) > 2 else therapy)


RUN_MJS_STEPS = steps()
