// `vigil eval-card`'s event agreement on a constructed card: EVE stamps every event at its end;
// apneas carry their duration (start = stamp - duration), hypopneas do not and are matched by
// the end of Vigil's episode.
#include "pipeline/eval/card_compare.h"

#include <gtest/gtest.h>

#include <sstream>

namespace {

using namespace vigil;
constexpr ops::TimeUs kS = ops::kMicrosPerSecond;

io::ResmedCard OneNight() {
  io::ResmedCard card;
  io::StrDay day;
  day.date = "2023-08-21";
  day.usage_min = 60;
  day.sessions = 1;
  day.sessions_utc = {{1000 * kS, 4600 * kS}};
  card.days = {day};
  card.datalog_days = {"20230821"};
  ops::DeviceEventView on;
  on.time_us = 1000 * kS;
  card.device_events = {on};
  // Obstructive apnea 2000-2012 s (duration known); hypopnea ending at 3020 s (no duration).
  card.scored_events = {{2000 * kS, 12, "Obstructive Apnea"}, {3020 * kS, 0, "Hypopnea"}};
  return card;
}

vigil::eval::ReplayLines Episodes(const std::string& text) {
  std::istringstream in(text);
  return vigil::eval::ParseReplayLines(in);
}

TEST(CardCompare, ApneasMatchByStartHypopneasWithoutDurationByEnd) {
  const auto card = OneNight();
  // Times from the card's first telemetry item (1000 s): apnea at 2003 s, hypopnea 3004-3018 s.
  const auto lines =
      Episodes(R"({"type":"episode","rhythm":"APNEA","start":1003.0,"end":1013.0})"
               "\n"
               R"({"type":"episode","rhythm":"HYPOPNEA","start":2004.0,"end":2018.0})"
               "\n");
  const auto c = vigil::eval::CompareCard(lines, card);
  EXPECT_EQ(c.eve_events, 2);
  EXPECT_EQ(c.vigil_events, 2);
  // The hypopnea's start is 16 s before the device's stamp, its end 2 s: matched by end.
  EXPECT_EQ(c.matched, 2);
}

TEST(CardCompare, EpisodeFarFromEveryStampIsNotMatched) {
  const auto card = OneNight();
  // The hypopnea ends 12 s before the device's stamp: outside 10 s. The apnea starts 11 s late.
  const auto lines =
      Episodes(R"({"type":"episode","rhythm":"APNEA","start":1011.0,"end":1021.0})"
               "\n"
               R"({"type":"episode","rhythm":"HYPOPNEA","start":1996.0,"end":2008.0})"
               "\n");
  const auto c = vigil::eval::CompareCard(lines, card);
  EXPECT_EQ(c.eve_events, 2);
  EXPECT_EQ(c.matched, 0);
  ASSERT_EQ(c.days.size(), 1u);
  EXPECT_EQ(c.days[0].vigil_events, 2);
}

}  // namespace
