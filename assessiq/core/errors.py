"""The core's errors. Every message is one line a user can act on.

    AssessIQError
    ├── InviteError        an invite or join request that cannot be accepted
    ├── ChannelClosed      the other end of a channel went away
    ├── StoreError         a session file that cannot be opened or written
    ├── PolicyError        a policy file that is not valid
    └── RecordError        a session record that cannot be read at all
"""


class AssessIQError(Exception):
    """Base class of every error AssessIQ raises on purpose."""


class InviteError(AssessIQError):
    """An invite or a join request was refused; the message says why."""


class ChannelClosed(AssessIQError):
    """The channel is closed; nothing more can be sent or received."""


class StoreError(AssessIQError):
    """A session store could not be opened, read or written."""


class PolicyError(AssessIQError):
    """A policy file is malformed or has out-of-range values."""


class RecordError(AssessIQError):
    """A session record is unreadable (not merely tampered with)."""
