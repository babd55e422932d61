#!/usr/bin/env bash
# The source style check (STYLE.md, "Formatting and checks"), as curl's
# checksrc: every C file of src/, tools/, tests/ and bench/ is read line by
# line and each finding is printed as file:line: what. Exit 1 on any.
#
#   - lines over 80 columns (src/ and tools/; a table may sit between
#     "checksrc: wide" and "checksrc: end" comments),
#   - tabs and trailing white space,
#   - the banned functions: sprintf, vsprintf, strcpy, strcat, strncat,
#     strtok, atoi, atol, atoll, gets.
#
#   tools/checksrc.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
mapfile -t files < <(git ls-files -- 'src/*.c' 'src/*.h' 'tools/*.c' \
  'tests/*.c' 'tests/*.h' 'bench/*.c' 2>/dev/null ||
  find src tools tests bench -name '*.[ch]')
[ ${#files[@]} -gt 0 ] || { echo "checksrc: no files under $root" >&2; exit 2; }
awk '
  FNR == 1 { wide = 0; narrow = FILENAME ~ /^(src|tools)\// }
  /checksrc: wide/ { wide = 1 }
  /checksrc: end/ { wide = 0 }
  function say(what) { printf "%s:%d: %s\n", FILENAME, FNR, what; bad++ }
  {
    if (narrow && !wide && length($0) > 80)
      say("line longer than 80 columns (" length($0) ")")
    if ($0 ~ /\t/) say("tab")
    if ($0 ~ /[ \t]+$/) say("trailing white space")
    code = $0
    sub(/\/\/.*/, "", code)
    gsub(/"([^"\\]|\\.)*"/, "\"\"", code)
    if (match(code, /(^|[^A-Za-z0-9_])(sprintf|vsprintf|strcpy|strcat|strncat|strtok|atoi|atol|atoll|gets)[ ]*\(/)) {
      name = substr(code, RSTART, RLENGTH)
      gsub(/^[^A-Za-z]|[ (]/, "", name)
      say("banned function " name "(): see STYLE.md")
    }
  }
  END { if (bad) { printf "checksrc: %d finding(s)\n", bad; exit 1 } }
' "${files[@]}"
echo "checksrc: ${#files[@]} files clean"
