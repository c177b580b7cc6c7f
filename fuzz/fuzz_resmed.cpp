// fuzz_resmed: operators/io/resmed_card.h ReadResmedCard (and CardTelemetry) on a minimal card
// built from the input in a scratch folder, laid out like ../shared/data/resmed/<model>/:
//   <card>/STR.edf
//   <card>/DATALOG/20250202/20250202_223724_<KIND>.edf
// Input: one selector byte, then the STR.edf bytes and, after fuzz::kSeparator, the bytes of the
// DATALOG file (absent: an empty DATALOG day). Selector bits 0-1 pick KIND (BRP, PLD, SAD,
// EVE); bit 2 set reads without signals (ResmedCardOptions::read_signals = false).
// io::CardError and io::EdfError are the documented failures; anything else is a finding.
#include <array>
#include <filesystem>

#include "fuzz/fuzz_support.h"
#include "operators/io/edf_file.h"
#include "operators/io/resmed_card.h"

using namespace vigil;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path card = fuzz::ScratchDir("resmed") / "card";
  static const fs::path day = card / "DATALOG" / "20250202";
  static const bool made = fs::create_directories(day);
  (void)made;
  static constexpr std::array<const char*, 4> kKinds = {"BRP", "PLD", "SAD", "EVE"};
  if (size == 0) return 0;

  const auto parts = fuzz::SplitInput(fuzz::AsText(data + 1, size - 1), 2);
  for (const auto& entry : fs::directory_iterator(day)) fs::remove(entry.path());
  fuzz::WriteFile(card / "STR.edf", parts[0]);
  if (parts.size() > 1) {
    fuzz::WriteFile(day / (std::string("20250202_223724_") + kKinds[data[0] & 3] + ".edf"),
                    parts[1]);
  }
  io::ResmedCardOptions options;
  options.read_signals = (data[0] & 4) == 0;
  try {
    const io::ResmedCard c = io::ReadResmedCard(card, options);
    for (const auto& item : io::CardTelemetry(c)) {
      if (item.series != nullptr) (void)item.chunk();
    }
  } catch (const io::CardError&) {
  } catch (const io::EdfError&) {
  }
  return 0;
}
