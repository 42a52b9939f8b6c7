"""The host's frame transport: whatever way a line dies, the caller gets a LinkError (the API's promise)."""

import termios

import pytest
import serial
from pumpctl import LinkError
from pumpctl.transport import SerialTransport

from firmware import codec


def test_a_tty_that_fails_while_draining_a_write_is_a_link_error():
    # A pty whose other side died: write() may still succeed and tcdrain() fail with termios.error, not an OSError.
    link = SerialTransport("loop://", timeout=0.1)

    def dead_tty():
        raise termios.error(5, "Input/output error")

    link._serial.flush = dead_tty
    with pytest.raises(LinkError, match="Input/output error"):
        link.request(codec.STATUS)


def test_a_tty_that_cannot_be_reconfigured_while_waiting_for_a_reply_is_a_link_error(monkeypatch):
    # pyserial reconfigures the port to set each read's timeout; on a dead pty that raises SerialException there.
    link = SerialTransport("loop://", timeout=0.1)

    def dead_tty(self, *args):
        raise serial.SerialException("Could not configure port: (5, 'Input/output error')")

    monkeypatch.setattr(type(link._serial), "_reconfigure_port", dead_tty)
    with pytest.raises(LinkError, match="Could not configure port"):
        link.request(codec.STATUS)
