# Sourced. Helpers to find and end a process and everything it started, including children that
# moved to process groups of their own (job control, setsid), which `timeout` and `kill -- -PGID`
# miss. Orphans re-parented to init are out of reach; our scripts redirect theirs away from pipes.

# The process and all its descendants, parents first.
descendants() {
  local p
  echo "$1"
  for p in $(pgrep -P "$1"); do descendants "$p"; done
}

# TERM to the process, its group and its descendants; KILL to whatever is left 5 s later.
end_tree() {
  local victims
  victims=$(descendants "$1")
  kill -TERM -- -"$1" $victims 2>/dev/null
  sleep 5
  victims="$victims $(descendants "$1" 2>/dev/null)"
  kill -KILL -- -"$1" $victims 2>/dev/null
}
