# hal/parts.py for what only the rp2 port has: the PIO state machine of the step driver.


def rp2_step_machine(sm_id, step):
    from machine import Pin

    from hal.rp2_stepper import make_state_machine

    return make_state_machine(sm_id, Pin(step, Pin.OUT, value=0))
