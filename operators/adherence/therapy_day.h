// The therapy day: noon to noon in the patient's local time zone (CLINICAL.md, OSCAR's default
// day split). Across a DST change the day is 23 h (spring) or 25 h (autumn) long; the noon
// boundaries themselves never fall into a changing hour in the European zones, but the code
// does not rely on that (non-existent local noon maps to the instant of the change, repeated
// local noon to the earlier instant). Uses Howard Hinnant's date/tz with the OS tz database.
#pragma once

#include <string>
#include <string_view>

#include "operators/core/time.h"

namespace date {
class time_zone;
}

namespace vigil::ops {

struct TherapyDayWindow {
  std::string date;     // YYYY-MM-DD of the local noon that starts the day
  TimeUs start_us = 0;  // [start, end) in UTC
  TimeUs end_us = 0;
  double hours() const { return ToSeconds(end_us - start_us) / 3600.0; }
};

// The therapy day that contains `t_us`. `zone` must not be null.
TherapyDayWindow TherapyDayAt(TimeUs t_us, const date::time_zone* zone);

// The therapy day that follows `day`.
TherapyDayWindow NextTherapyDay(const TherapyDayWindow& day, const date::time_zone* zone);

// Throws std::runtime_error naming the zone when the OS tz database does not know it.
const date::time_zone* LocateZone(const std::string& name);

// The zone of an operator's options: throws OptionError naming "<op>.time_zone" and the name
// when the tz database does not know it.
const date::time_zone* ZoneOption(std::string_view op, const std::string& name);

}  // namespace vigil::ops
