# Sourced by .ci/run, tests/run.sh and benches/run.sh: `phase NAME` starts a phase (ending
# the one before), and the phases' times are printed when the script exits, failed or not.
_phase_names=() _phase_secs=() _phase_now="" _phase_t0=$SECONDS
phase() {
  _phase_end
  _phase_now=$1 _phase_t0=$SECONDS
  printf '== %s\n' "$1" >&2
}
_phase_end() {
  if [[ -n $_phase_now ]]; then
    _phase_names+=("$_phase_now") _phase_secs+=($((SECONDS - _phase_t0)))
    _phase_now=""
  fi
}
phase_times() {
  local status=$? i total=0
  _phase_end
  printf '\n== phase times (%s)\n' "${PHASES_TITLE:-$0}" >&2
  for i in "${!_phase_names[@]}"; do
    printf '%6d s  %s\n' "${_phase_secs[$i]}" "${_phase_names[$i]}" >&2
    total=$((total + _phase_secs[i]))
  done
  printf '%6d s  total%s\n' "$total" "$([[ $status -eq 0 ]] || echo ", FAILED (exit $status)")" >&2
  return $status
}
