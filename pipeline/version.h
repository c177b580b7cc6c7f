// The version of the vigil binary, from CMake's project(VERSION).
#pragma once

namespace vigil {
const char* Version();
}  // namespace vigil
