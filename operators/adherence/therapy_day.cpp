#include "operators/adherence/therapy_day.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

#include "operators/core/options.h"
#include "operators/core/parameters.h"

namespace vigil::ops {
namespace {

TimeUs ToUs(date::sys_time<std::chrono::microseconds> t) {
  return t.time_since_epoch().count();
}

TherapyDayWindow WindowStartingOn(date::local_days day, const date::time_zone* zone) {
  using std::chrono::hours;
  const auto start = zone->to_sys(day + hours(12), date::choose::earliest);
  const auto end = zone->to_sys(day + date::days(1) + hours(12), date::choose::earliest);
  TherapyDayWindow w;
  w.date = date::format("%F", day);
  w.start_us = ToUs(std::chrono::time_point_cast<std::chrono::microseconds>(start));
  w.end_us = ToUs(std::chrono::time_point_cast<std::chrono::microseconds>(end));
  return w;
}

}  // namespace

TherapyDayWindow TherapyDayAt(TimeUs t_us, const date::time_zone* zone) {
  const date::sys_time<std::chrono::microseconds> t{std::chrono::microseconds(t_us)};
  const auto local = zone->to_local(t);
  auto day = date::floor<date::days>(local);
  if (local - day < std::chrono::hours(12)) day -= date::days(1);
  return WindowStartingOn(day, zone);
}

TherapyDayWindow NextTherapyDay(const TherapyDayWindow& day, const date::time_zone* zone) {
  std::istringstream in(day.date);
  date::local_days d;
  in >> date::parse("%F", d);
  return WindowStartingOn(d + date::days(1), zone);
}

const date::time_zone* ZoneOption(std::string_view op, const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    throw OptionError(ParameterName(op, "time_zone"), name,
                      "unknown time zone (IANA name expected, e.g. Europe/Copenhagen)");
  }
}

const date::time_zone* LocateZone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        fmt::format("time zone '{}' unknown to the tz database: {}", name, e.what()));
  }
}

}  // namespace vigil::ops
