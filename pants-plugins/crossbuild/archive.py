"""The test archive: every test binary of a `crossbuild_test_archive`, built once, packed with a
manifest into one reproducible tar, and packaged into dist/."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import Dict, List, Tuple

from pants.backend.cc.target_types import CCSourceField
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import AddPrefix, CreateDigest, Digest, DigestContents, DigestSubset, FileContent, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    HydratedSources,
    HydrateSourcesRequest,
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from crossbuild.build import BuildSettings, CompiledObject, CompileRequest, LinkedBinary, LinkRequest
from crossbuild.resources import SANDBOX_DIR, harness_header_digest
from crossbuild.system_directory import SystemDirectory, SystemDirectoryRequest
from crossbuild.target_types import (
    DEFAULT_FRAMEWORK,
    FRAMEWORKS,
    CrossbuildCompileOptionsField,
    CrossbuildFrameworkField,
    CrossbuildIncludeDirsField,
    CrossbuildLibcField,
    CrossbuildLinkOptionsField,
    CrossbuildPlatformField,
    CrossbuildProfileField,
    CrossbuildSystemDirectoryTarget,
    CrossbuildTestSourcesField,
)

MANIFEST = "manifest.txt"
BINARY_DIR = "bin"
# The manifest's first line names its format version. Version 2 adds a `framework NAME` line
# (after `target`); archives of the default framework keep writing version 1, byte for byte as
# before. Readers (`read_manifest`) take both, and ignore keys they do not know in version 2.
MANIFEST_FORMAT = "crossbuild-test-archive"
MANIFEST_HEADER = f"{MANIFEST_FORMAT} 1"
MANIFEST_HEADER_V2 = f"{MANIFEST_FORMAT} 2"
HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".inc", ".inl")
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx")


@dataclass(frozen=True)
class BuildTestArchiveRequest:
    address: Address


@dataclass(frozen=True)
class BuiltTestArchive:
    digest: Digest  # holds `path` only
    path: str
    platform: str
    triple: str
    binaries: Tuple[Tuple[str, int, str], ...]  # (path in archive, size, sha256)
    # One digest per binary (same order), holding it at its path in the archive: shards run
    # each binary in its own action, so an unchanged binary's results come from the cache.
    binary_digests: Tuple[Digest, ...] = ()
    framework: str = DEFAULT_FRAMEWORK  # how the shard runner lists and runs the binaries


def deterministic_tar(files: Dict[str, bytes], executables: set) -> bytes:
    """A tar of `files` with sorted entries, mtime 0, owner 0:0 and fixed modes."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(p) for name in files for p in PurePath(name).parents if str(p) != "."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if name in executables else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def manifest_text(
    platform: str, triple: str, binaries: List[Tuple[str, int, str]], framework: str = DEFAULT_FRAMEWORK
) -> str:
    if framework == DEFAULT_FRAMEWORK:
        lines = [MANIFEST_HEADER, f"platform {platform}", f"target {triple}"]
    else:
        lines = [MANIFEST_HEADER_V2, f"platform {platform}", f"target {triple}", f"framework {framework}"]
    lines += [f"binary {path} {sha}" for path, _, sha in binaries]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Manifest:
    version: int
    platform: str
    triple: str
    framework: str
    binaries: Tuple[Tuple[str, str], ...]  # (path in archive, sha256)


def read_manifest(text: str) -> Manifest:
    """Parses `manifest.txt` of either version; ValueError for anything else."""
    lines = text.splitlines()
    head = lines[0].split() if lines else []
    if len(head) != 2 or head[0] != MANIFEST_FORMAT or head[1] not in ("1", "2"):
        raise ValueError(f"not a crossbuild test archive manifest (version 1 or 2): {lines[:1]}")
    version = int(head[1])
    fields: Dict[str, str] = {}
    binaries = []
    for number, line in enumerate(lines[1:], start=2):
        key, _, rest = line.partition(" ")
        if key == "binary":
            path, _, sha = rest.partition(" ")
            if not path or len(sha) != 64:
                raise ValueError(f"manifest line {number}: expected `binary PATH SHA256`: {line!r}")
            binaries.append((path, sha))
        elif key in ("platform", "target") or (key == "framework" and version >= 2):
            fields[key] = rest
        elif version == 1:
            raise ValueError(f"manifest line {number}: unknown in version 1: {line!r}")
    for key in ("platform", "target"):
        if key not in fields:
            raise ValueError(f"the manifest has no `{key}` line")
    framework = fields.get("framework", DEFAULT_FRAMEWORK)
    if framework not in FRAMEWORKS:
        raise ValueError(f"the manifest names an unknown framework {framework!r}")
    return Manifest(version, fields["platform"], fields["target"], framework, tuple(binaries))


@rule(desc="Building a crossbuild test archive", level=LogLevel.DEBUG)
async def build_test_archive(request: BuildTestArchiveRequest) -> BuiltTestArchive:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="crossbuild test archive")
    )
    tgt = wrapped.target
    settings = BuildSettings(
        platform=tgt[CrossbuildPlatformField].value,
        profile=tgt[CrossbuildProfileField].value,
        libc=tgt[CrossbuildLibcField].value,
        include_dirs=(*tgt[CrossbuildIncludeDirsField].value, SANDBOX_DIR),
        copts=tuple(tgt[CrossbuildCompileOptionsField].value),
        linkopts=tuple(tgt[CrossbuildLinkOptionsField].value),
        owner=str(request.address),
    )
    transitive = await Get(
        TransitiveTargets, TransitiveTargetsRequest([request.address], include_special_cased_deps=True)
    )
    system_targets = [t for t in transitive.dependencies if isinstance(t, CrossbuildSystemDirectoryTarget)]
    library_sources, test_sources, harness = await MultiGet(
        Get(
            SourceFiles,
            SourceFilesRequest(
                [t.get(CCSourceField) for t in transitive.dependencies if not isinstance(t, CrossbuildSystemDirectoryTarget)]
            ),
        ),
        Get(HydratedSources, HydrateSourcesRequest(tgt[CrossbuildTestSourcesField])),
        Get(Digest, CreateDigest, harness_header_digest()),
    )
    systems = await MultiGet(Get(SystemDirectory, SystemDirectoryRequest(t.address)) for t in system_targets)
    if systems:
        # Two system directories may share a path (Catch2 and doctest from /usr/include): their
        # snapshots hold the machine's same files, so they merge.
        settings = dataclasses.replace(
            settings,
            include_dirs=(*tgt[CrossbuildIncludeDirsField].value, *(d for s in systems for d in s.include_dirs), SANDBOX_DIR),
        )
    all_files = await Get(Digest, MergeDigests([library_sources.snapshot.digest, test_sources.snapshot.digest]))
    # Each compile sees only its own source and the headers: editing one .c file changes the
    # inputs of exactly one compile action. System directories (a test framework's headers and
    # sources, which may include one another) are inputs of every compile whole.
    headers = await Get(
        Digest, DigestSubset(all_files, PathGlobs([f"**/*{suffix}" for suffix in HEADER_SUFFIXES]))
    )
    headers = await Get(Digest, MergeDigests([headers, harness, *(s.digest for s in systems)]))

    library_paths = sorted(f for f in library_sources.snapshot.files if f.endswith(SOURCE_SUFFIXES))
    test_paths = sorted(test_sources.snapshot.files)
    clashes = sorted(set(library_paths) & set(test_paths))
    if clashes:
        raise ValueError(f"{request.address}: {clashes} are both test sources and library dependencies")
    names = [PurePath(p).stem for p in test_paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{request.address}: several test sources would make a binary named {duplicates}")

    own_files = await MultiGet(
        Get(Digest, DigestSubset(all_files, PathGlobs([p]))) for p in (*library_paths, *test_paths)
    )
    inputs = await MultiGet(Get(Digest, MergeDigests([headers, own])) for own in own_files)
    library_inputs, test_inputs = inputs[: len(library_paths)], inputs[len(library_paths) :]
    library_objects = await MultiGet(
        Get(CompiledObject, CompileRequest(p, d, settings)) for p, d in zip(library_paths, library_inputs)
    )
    test_objects = await MultiGet(
        Get(CompiledObject, CompileRequest(p, d, settings)) for p, d in zip(test_paths, test_inputs)
    )
    # A system directory's sources (GoogleTest's gtest-all.cc) compile with that directory's
    # own include dirs and nothing of the archive's, so one object per platform, profile and
    # libc serves every archive that links it.
    system_objects = await MultiGet(
        Get(
            CompiledObject,
            CompileRequest(
                source,
                system.digest,
                dataclasses.replace(
                    settings, include_dirs=system.include_dirs, copts=(), linkopts=(), owner=str(system.address)
                ),
            ),
        )
        for system in systems
        for source in system.sources
    )
    link_settings = dataclasses.replace(
        settings, linkopts=(*settings.linkopts, *(o for s in systems for o in s.linkopts))
    )
    binaries = await MultiGet(
        Get(LinkedBinary, LinkRequest(name, (obj, *library_objects, *system_objects), link_settings))
        for name, obj in zip(names, test_objects)
    )
    contents = await Get(DigestContents, MergeDigests(b.digest for b in binaries))
    files: Dict[str, bytes] = {}
    listed = []
    for fc in sorted(contents, key=lambda fc: fc.path):
        path = f"{BINARY_DIR}/{fc.path}"
        files[path] = fc.content
        listed.append((path, len(fc.content), hashlib.sha256(fc.content).hexdigest()))
    by_path = {f"{BINARY_DIR}/{b.path}": b.digest for b in binaries}
    binary_digests = await MultiGet(Get(Digest, AddPrefix(by_path[p], BINARY_DIR)) for p, _, _ in listed)
    triple = settings.triple
    framework = tgt[CrossbuildFrameworkField].value
    files[MANIFEST] = manifest_text(settings.platform, triple, listed, framework).encode()
    archive_name = f"{request.address.target_name}.tar"
    tar = deterministic_tar(files, executables={p for p, _, _ in listed})
    digest = await Get(Digest, CreateDigest([FileContent(archive_name, tar)]))
    return BuiltTestArchive(
        digest, archive_name, settings.platform, triple, tuple(listed), tuple(binary_digests), framework
    )


@dataclass(frozen=True)
class CrossbuildTestArchivePackageFieldSet(PackageFieldSet):
    required_fields = (CrossbuildTestSourcesField, CrossbuildPlatformField)

    platform: CrossbuildPlatformField
    output_path: OutputPathField


@rule(desc="Packaging a crossbuild test archive", level=LogLevel.DEBUG)
async def package_test_archive(field_set: CrossbuildTestArchivePackageFieldSet) -> BuiltPackage:
    built = await Get(BuiltTestArchive, BuildTestArchiveRequest(field_set.address))
    output_path = field_set.output_path.value_or_default(file_ending="tar")
    directory = os.path.dirname(output_path)
    digest = built.digest
    if directory:
        digest = await Get(Digest, AddPrefix(digest, directory))
    final_path = os.path.join(directory, built.path) if directory else built.path
    size_lines = tuple(
        f"{path}: {size:,} bytes ({built.triple})" for path, size, _ in built.binaries
    )
    return BuiltPackage(digest, (BuiltPackageArtifact(final_path, extra_log_lines=size_lines),))


def rules():
    return [
        *collect_rules(),
        UnionRule(PackageFieldSet, CrossbuildTestArchivePackageFieldSet),
    ]
