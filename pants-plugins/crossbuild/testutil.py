"""What a RuleRunner needs to run the plugin's rules (used by the plugin's tests): the plugin's
own rules plus the Pants core and Python rules they request, which a real Pants run has anyway."""

from pants.backend.python import target_types_rules
from pants.backend.python.target_types import PythonSourcesGeneratorTarget, PythonSourceTarget
from pants.core.util_rules import archive, stripped_source_files, system_binaries

from crossbuild import register


def plugin_target_types():
    return [*register.target_types(), PythonSourcesGeneratorTarget, PythonSourceTarget]


def plugin_rules():
    return [
        *register.rules(),
        *stripped_source_files.rules(),
        *archive.rules(),
        *system_binaries.rules(),
        *target_types_rules.rules(),
    ]
