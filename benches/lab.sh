# Sourced by benches/bulk.sh and benches/live.sh: a lab proxy serving generated modules on
# 127.0.0.1, and the real go command downloading all of them from it (nothing else: every go
# variable that could reach elsewhere is set).

# make_modules DIR N KB: N modules of about KB kilobytes each (random text, so zips do not
# shrink much) under DIR; their module@version list in MODS.
make_modules() {
  local dir=$1 n=$2 kb=$3 i m v d
  MODS=()
  for i in $(seq 1 "$n"); do
    m="bench.test/Mod$i" v="v1.0.$((i % 5))"
    d="$dir/$m@$v"
    mkdir -p "$d"
    printf 'module %s\n\ngo 1.21\n' "$m" > "$d/go.mod"
    printf 'package mod%d\n\nconst N = %d\n' "$i" "$i" > "$d/mod.go"
    head -c $((kb * 768)) /dev/urandom | base64 -w 76 > "$d/data.txt"
    MODS+=("$m@$v")
  done
}

# serve_modules BIN DIR PORT WORK: `modtrace lab serve` of DIR on 127.0.0.1:PORT, its pid
# added to PIDS, ready when this returns.
serve_modules() {
  local bin=$1 dir=$2 port=$3 work=$4
  "$bin" lab serve --modules "$dir" --log "$work/lab.jsonl" "proxy:127.0.0.1:$port" > "$work/lab.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q GOPROXY= "$work/lab.out" 2>/dev/null && break; sleep 0.1; done
}

# download_modules PORT WORK [P]: the go command downloads every module of MODS from the lab,
# into a fresh module cache under WORK, 100 modules per go process and P processes at a time
# (default 1); their -json output in WORK/go.json.
download_modules() {
  local port=$1 work=$2 parallel=${3:-1}
  mkdir -p "$work/home"
  printf '%s\n' "${MODS[@]}" | env -i PATH="$PATH" HOME="$work/home" GOPATH="$work/home/go" \
      GOMODCACHE="$work/home/modcache" GOCACHE="$work/home/cache" GOPROXY="http://127.0.0.1:$port" \
      GOSUMDB=off GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE= GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      xargs -P "$parallel" -n 100 go mod download -json > "$work/go.json"
}
