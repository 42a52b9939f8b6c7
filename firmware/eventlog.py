# The event log: a fixed ring of the most recent events, each with its pump
# time, a code and a short text. It holds every programming change (with the
# library version in force), every bolus and refusal of a patient bolus,
# every alarm and clock change, and every restart. It is saved with the rest of
# the pump's state at each durable point (persist.py).
#
# Command and event path only (allocates a short string per entry).

CAPACITY = 128
MAX_TEXT = 100

EV_BOOT = 1
EV_PROGRAM = 2  # a program was committed
EV_THERAPY = 3  # a change the running therapy made itself (flex day, bolus end, bridge done)
EV_BOLUS = 4  # a bolus started
EV_PATIENT_REFUSED = 5  # a patient bolus request was refused
EV_ALARM = 6
EV_ACK = 7
EV_CLOCK = 8
EV_LIBRARY = 9
EV_STOP = 10
EV_FAULT = 11
EV_RESTART = 12  # the pump resumed from its saved state after a restart
# Sessions and security refusals are kept in the ring but saved only with the
# next save: a flood of frames must not become a flood of flash writes.
EV_SESSION = 13  # a link session started or ended
EV_SECURITY = 14  # a refused authentication, or a command refused for its role (rate-limited)
EV_KEYS = 15  # keys provisioned or changed (saved at once)
EV_SERVICE = 16  # the firmware left for the board's REPL (a firmware update)
EV_ALARM_CLEAR = 17  # an alarm's condition cleared (it leaves once acknowledged)
EV_SELF_TEST = 18  # the power-on self-test: passed, or each problem it found
EV_REFILL = 19  # a refill: volume removed, expected and added
EV_SILENCE = 20  # the alarm tones were silenced (at most 2 min)
EV_RECOVERY = 21  # delivery resumed after a fault (the motor turned again, the occlusion cleared)
EV_BATTERY = 22  # battery milestones: ERI, critical, end of service
EV_CALIBRATION = 23  # a new volume per step (saved at once)


class EventLog:
    def __init__(self):
        self._entries: list = [None] * CAPACITY  # (mday, us, code, text) or None
        self.count = 0  # events logged since boot; the ring keeps the last CAPACITY

    def add(self, mday, us, code, text=""):
        if len(text.encode()) > MAX_TEXT:  # bytes: the link carries at most 100 bytes of text
            while len(text.encode()) > MAX_TEXT - 3:
                text = text[:-1]
            text += "..."
        self._entries[self.count % CAPACITY] = (mday, us, code, text)
        self.count += 1

    def oldest(self):
        """Index of the oldest entry still in the ring."""
        return max(self.count - CAPACITY, 0)

    def get(self, index):
        """Entry number index (0 = first since boot), or None if it has left the ring."""
        if index >= self.count or index < self.oldest():
            return None
        return self._entries[index % CAPACITY]
