"""Starts moto's server (same arguments as `moto_server`) with two fixes to its DynamoDB
transactions, which real DynamoDB does not need.

1. moto serves requests on threads, and its TransactWriteItems deep-copies every table it
   touches (to roll back on cancellation) while other threads may be writing to them: under
   concurrent writes the copy fails with "dictionary changed size during iteration" and the
   request returns a bare HTTP 500. One lock around moto's DynamoDB request handler removes
   the race; DynamoDB calls never block (no long polling), so the lock costs nothing that
   moto's GIL-bound handlers did not already serialise. Other services (SQS long polls) stay
   concurrent.
2. That copy includes the table's stream, every record since the table was created, so each
   transaction gets slower as the stream grows (hundreds of ms after a few thousand writes).
   Records never change once written, so the copy of a stream shard takes a new list of the
   same records instead: rolling back still drops the records a cancelled transaction added.
"""

import copy
import threading

from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised(self, *args, **kwargs):
    with _lock:
        return _call_action(self, *args, **kwargs)


DynamoHandler.call_action = _serialised


def _copy_shard(self, memo):
    clone = StreamShard.__new__(StreamShard)
    memo[id(self)] = clone
    for name, value in self.__dict__.items():
        if name == "items":
            clone.items = list(value)
        else:
            setattr(clone, name, copy.deepcopy(value, memo))
    return clone


StreamShard.__deepcopy__ = _copy_shard

if __name__ == "__main__":
    main()
