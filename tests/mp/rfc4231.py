# HMAC-SHA-256 test vectors of RFC 4231 section 4 (test cases 1-7), as
# (key hex, data hex, expected MAC hex). Test case 5 is truncated to 128 bits
# by the RFC itself. Shared by the CPython and the MicroPython tests.

_LONG_KEY = "aa" * 131


def _hex(text):
    return "".join("%02x" % b for b in text.encode())


VECTORS = (
    ("0b" * 20, _hex("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        _hex("Jefe"),
        _hex("what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    ("0c" * 20, _hex("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"),
    (
        _LONG_KEY,
        _hex("Test Using Larger Than Block-Size Key - Hash Key First"),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        _LONG_KEY,
        _hex(
            "This is a test using a larger than block-size key and a larger than block-size data."
            " The key needs to be hashed before being used by the HMAC algorithm."
        ),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
)
