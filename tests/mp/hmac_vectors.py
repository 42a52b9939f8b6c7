# Runs firmware/auth.py's HMAC-SHA256 on the RFC 4231 vectors (rfc4231.py);
# prints one line per vector: its number, ok or the wrong MAC.
import binascii

from rfc4231 import VECTORS

from firmware.auth import Hmac

for i, (key_hex, data_hex, want) in enumerate(VECTORS):
    key = binascii.unhexlify(key_hex)
    data = binascii.unhexlify(data_hex)
    got = binascii.hexlify(Hmac(key).digest(data)).decode()[: len(want)]
    # The same MAC with the message given in two parts.
    half = len(data) // 2
    parts = binascii.hexlify(Hmac(key).digest(data[:half], data[half:])).decode()[: len(want)]
    print(i + 1, "ok" if got == want and parts == want else "wrong %s %s" % (got, parts))
