# micropython.heap_lock for the harness scripts, and a stand-in on CPython
# (which has no heap lock) so the same script runs on all three VMs.
try:
    import micropython

    lock = micropython.heap_lock
    unlock = micropython.heap_unlock
    HAVE_LOCK = True
except (ImportError, AttributeError):  # CPython

    def lock():
        pass

    unlock = lock
    HAVE_LOCK = False


def heap_lock_works():
    """True if an allocation under the lock really raises MemoryError here."""
    if not HAVE_LOCK:
        return False
    caught = False
    lock()
    try:
        _ = [1, 2, 3]  # allocates: must raise under the lock
    except MemoryError:
        caught = True
    finally:
        unlock()
    return caught
