#include "operators/core/operator_spec.h"

#include <algorithm>
#include <cctype>

namespace vigil::ops {

std::string ConditionTitle(std::string_view condition) {
  std::string title(condition);
  std::replace(title.begin(), title.end(), '_', ' ');
  std::transform(title.begin() + (title.empty() ? 0 : 1), title.end(),
                 title.begin() + (title.empty() ? 0 : 1),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return title;
}

}  // namespace vigil::ops
