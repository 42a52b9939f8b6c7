# A drug's limits checked as LIB_DRUG stages them (commands/library.py): limits that contradict
# each other refused, naming the drug, the field and both values. Loaded for the call and
# forgotten after it (lazy.py): a running pump, and the rest of a library session, need none of it.
#
# Command path only: may allocate and use long ints.

from firmware import codec, const
from firmware.errors import Refusal
from firmware.library import MAX_PATIENT_BOLUSES_PER_DAY

_MAX_NAME = 24
_MAX_LOCKOUT_S = 400 * 86_400  # the longest duration a person can type (units.MAX_DURATION_DAYS)
# How a refusal shows field f's number (codec.LIBRARY_FIELDS): a token pumpctl renders in a
# clinician's units (host/pumpctl/words.py): k ng/mL, r ng/day per day, h ng/day per hour, g ng,
# s seconds; a count as it is.
_TOKEN = const(" krrhhgggs")


def check_drug(d):
    """Refuse (Refusal naming the drug and field) limits that contradict each other."""
    name = d.name
    if not name or len(name) > _MAX_NAME or not _is_name(name):
        raise Refusal("name", "drug name %r must be 1-%d lowercase letters, digits or '-'" % (name, _MAX_NAME))
    n = d.numbers
    if n[0] == 0:
        raise Refusal(name + " max_concentration", "%s: max_concentration must be above zero" % name)
    _ordered(d, 2, 3)  # daily_soft <= daily_hard
    _ordered(d, 4, 5)  # rate_soft <= rate_hard
    _ordered(d, 6, 7)  # bolus_soft <= bolus_hard
    _ordered(d, 7, 3)  # bolus_hard <= daily_hard
    _ordered(d, 8, 3)  # patient_dose_hard <= daily_hard
    if d.daily_hard_ng == 0 or d.rate_hard_ng_per_day == 0:
        raise Refusal(name + " daily_hard", "%s: daily_hard and rate_hard must be above zero" % name)
    # A continuous program at the daily limit must fit under the rate limit.
    if d.rate_hard_ng_per_day < d.daily_hard_ng:
        raise Refusal(
            name + " rate_hard",
            "%s: rate_hard %s is below daily_hard %s spread over 24 h" % (name, _shown(5, n[4]), _shown(3, n[2])),
        )
    if n[8] > _MAX_LOCKOUT_S:
        raise Refusal(
            name + " patient_lockout_min", "%s: patient_lockout_min %s is above 400 day" % (name, _shown(9, n[8]))
        )
    if n[9] > MAX_PATIENT_BOLUSES_PER_DAY:
        raise Refusal(
            name + " patient_max_per_day",
            "%s: patient_max_per_day %d is above %d" % (name, n[9], MAX_PATIENT_BOLUSES_PER_DAY),
        )


def _ordered(d, low, high):
    """Refuse drug d if its field low (codec.LIBRARY_FIELDS) is above its field high."""
    if d.numbers[low - 1] > d.numbers[high - 1]:
        low_name = codec.LIBRARY_FIELDS[low]
        raise Refusal(
            d.name + " " + low_name,
            "%s: %s %s is above %s %s"
            % (
                d.name,
                low_name,
                _shown(low, d.numbers[low - 1]),
                codec.LIBRARY_FIELDS[high],
                _shown(high, d.numbers[high - 1]),
            ),
        )


def _shown(field, number):
    return "{%s%d}" % (_TOKEN[field], number) if field < len(_TOKEN) else "%d" % number


def _is_name(name):
    # Its UTF-8 bytes, not its characters: each character a str gives (name[i], `for ch in name`) is
    # interned for good, so a host's every new character would be a name more on the pump.
    for b in name.encode():
        if not (0x61 <= b <= 0x7A or 0x30 <= b <= 0x39 or b == 0x2D):  # a-z, 0-9, "-"
            return False
    return True
