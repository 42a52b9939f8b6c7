# Sessions (auth.py): begin, prove, end. Resident (commands/__init__.py): a session opens
# before every change. A key change is the keys family's (keys.py).

from firmware import auth, codec, eventlog


# Asks for a challenge, to open a session for a role.
#
# Request:
# role: 1 patient, 2 clinician
#
# Reply:
# pump_nonce: 16 bytes: the challenge, signed by the pump (issued_s, counter, tag: [the handshake](#the-handshake))
#
# **Refusals** (not ERR_BAD_VALUE: authentication codes, logged):
# ERR_AUTH "role N does not exist: 1 is the patient, 2 the clinician";
# ERR_NO_KEYS "this pump has no keys: provision them when flashing it".
#
# **Notes:** challenges already given stay valid. See [the handshake](#the-handshake).
def auth_begin(pump, values):
    (role,) = values
    return (pump.auth.begin(role, pump.now_us()),)


# Answers the challenge; opens the session.
#
# Request:
# role: the role of the challenge: 1 patient, 2 clinician
# pump_nonce: the challenge answered, as AUTH_BEGIN gave it
# host_nonce: 16 bytes the host chose (fresh for every handshake)
# proof: 32 bytes: HMAC-SHA256(key, "pump-auth-1" || role || pump_nonce || host_nonce)
#
# Reply:
# pump_proof: 32 bytes: HMAC-SHA256(key, "pump-ok-1" || role || pump_nonce || host_nonce); the host must check it
# timeout_s: the session ends after this many seconds of pump time with no authenticated frame: 60
#
# **Refusals** (authentication codes, logged; " (N failed since the last
# login)" is added once a wrong proof has counted): ERR_AUTH "role N does not
# exist: ..."; ERR_NO_KEYS; ERR_AUTH "the pump and host nonces must be 16
# bytes each"; ERR_AUTH "not a challenge this pump gave the clinician role
# since it started: send auth-begin"; ERR_AUTH "this challenge is older than
# the last login, or was used: send auth-begin"; ERR_AUTH "the challenge is
# more than 30 s old: send auth-begin"; ERR_AUTH "wrong key for the clinician
# role" / "... patient role" (counts). None locks anything out.
def auth_prove(pump, values):
    role, pump_nonce, host_nonce, proof = values
    now = pump.now_us()
    try:
        pump_proof = pump.auth.prove(role, pump_nonce, host_nonce, proof, now)
    except auth.AuthError as e:
        if pump.auth.failures:
            e.message = "%s (%d failed since the last login)" % (e.message, pump.auth.failures)
        raise
    pump.check_session()  # a session it replaced
    pump.log_event(eventlog.EV_SESSION, "{o%d} session started" % role)
    return (pump_proof, auth.SESSION_TIMEOUT_US // 1_000_000)


# Ends the session the frame's MAC belongs to.
#
# **Refusals:** none of its own (ERR_NEED_KEY without a MAC; ERR_NO_SESSION
# if the session already ended).
#
# **Notes:** the reply carries the ended session's MAC. Logged "session
# ended: ended by the host"; drops what the session staged.
def auth_end(pump, values):
    pump.auth.end("ended by the host")
    pump.check_session()
    return ()


COMMANDS = (
    (codec.AUTH_BEGIN, auth_begin, 0),
    (codec.AUTH_PROVE, auth_prove, 0),
    (codec.AUTH_END, auth_end, 0),
)
