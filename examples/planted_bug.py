import os


def remove_stale(path):
    """Delete `path` if it exists."""
    if not os.path.exists(path):
        os.remove(path)
        return True
    return False
