// How deeply a JSON text nests arrays and objects, found without parsing it: a text nested too
// deep is refused before anything recursive (a dump for an error message, a destructor) sees it.
#pragma once

#include <string_view>

namespace dsk {

// Brackets inside strings do not count. Stops counting at `limit` + 1 (enough to refuse).
inline int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace dsk
