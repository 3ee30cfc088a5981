from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Input(_message.Message):
    __slots__ = ("path", "digest")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    path: str
    digest: bytes
    def __init__(self, path: _Optional[str] = ..., digest: _Optional[bytes] = ...) -> None: ...

class WorkRequest(_message.Message):
    __slots__ = ("arguments", "inputs", "request_id", "cancel", "verbosity", "sandbox_dir")
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    VERBOSITY_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_DIR_FIELD_NUMBER: _ClassVar[int]
    arguments: _containers.RepeatedScalarFieldContainer[str]
    inputs: _containers.RepeatedCompositeFieldContainer[Input]
    request_id: int
    cancel: bool
    verbosity: int
    sandbox_dir: str
    def __init__(self, arguments: _Optional[_Iterable[str]] = ..., inputs: _Optional[_Iterable[_Union[Input, _Mapping]]] = ..., request_id: _Optional[int] = ..., cancel: _Optional[bool] = ..., verbosity: _Optional[int] = ..., sandbox_dir: _Optional[str] = ...) -> None: ...

class WorkResponse(_message.Message):
    __slots__ = ("exit_code", "output", "request_id", "was_cancelled")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WAS_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    output: str
    request_id: int
    was_cancelled: bool
    def __init__(self, exit_code: _Optional[int] = ..., output: _Optional[str] = ..., request_id: _Optional[int] = ..., was_cancelled: _Optional[bool] = ...) -> None: ...
