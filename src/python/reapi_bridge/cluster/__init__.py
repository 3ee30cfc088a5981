"""The embedded cluster of `reapi-bridge up`: a supervisor process that runs the bridge and one
executor per ISA on this machine and restarts whichever of them exits unexpectedly.

- `supervisor`: a generic supervisor of child processes (ordered start, restarts with
  exponential backoff, ordered stop), recording what it does in a state file (`state`);
- `local`: the embedded cluster itself: `up`, `down` and the `supervise` process;
- `processes`: the "processes" section that `reapi-bridge status` prints.
"""
