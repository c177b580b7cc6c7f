// Compile-time checks of the snapshot format's assumptions (the format is little-endian with
// IEEE-754 floats; a port to another platform must add byte swapping here first).
#include <bit>
#include <limits>

#include "operators/core/snapshot.h"

static_assert(std::endian::native == std::endian::little, "snapshot format is little-endian");
static_assert(std::numeric_limits<double>::is_iec559, "snapshot format assumes IEEE-754");
