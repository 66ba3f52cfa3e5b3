#pragma once
// Terminal output for kpictl: aligned tables, Unicode sparklines, progress bars, status colors,
// and number, age and band forms for people. Pure functions over strings, so they are unit
// tested without a terminal.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpid/core/time.h"

namespace kpid::ctl {

enum class Color { kNone, kGreen, kYellow, kRed, kMagenta, kGray, kBold };

// ANSI colors, or plain text when color is off (not a terminal, NO_COLOR, --color=never).
struct Style {
  bool color = false;
  std::string paint(std::string_view text, Color c) const;
};

// The color of a KPI status (ok, warn, crit, anomalous, no_data), an alert state or severity,
// or an OKR grade (green, yellow, red).
Color color_of(std::string_view status);

// Columns on the terminal: code points, not bytes (the sparkline blocks are one column each).
size_t display_width(std::string_view utf8);

// Values as a line of the eight block characters ▁▂▃▄▅▆▇█ scaled between their min and max,
// averaged into `width` cells (fewer values give fewer cells); a cell without any finite value
// is a space, so gaps in the data stay visible. Empty when there is no finite value.
std::string sparkline(std::span<const double> values, size_t width);

// [#########.........]  a bar of `width` cells for done/total (clamped to 0..1).
std::string progress_bar(double fraction, size_t width);

// A number for a table cell: up to 4 significant digits without exponent for ordinary
// magnitudes ("1300", "0.312", "12.5"), thousands as "12.3k" / "4.56M" above 99,999; "-" when
// absent or not finite.
std::string human_number(std::optional<double> v);
// When a band level is breached, in words: below `low` and/or above `high` (a value strictly
// beyond a threshold is in that level): "<2", ">500", "<1 or >300"; "" when neither is given.
std::string breach_condition(std::optional<double> low, std::optional<double> high);

// human_number with the unit: "870 ms", "0.42 %", "3.1" (no unit).
std::string with_unit(std::optional<double> v, std::string_view unit);

// An age for people: "45s", "12m", "3h 5m", "2d 4h"; "-" for a negative age.
std::string human_age(DurationMs age);

// "12,345": integers with thousands separators, for counts.
std::string grouped(uint64_t n);

// A table printed with each column as wide as its widest cell (headers included), two spaces
// between columns; the last column is not padded. Numbers are right-aligned when the column
// says so. Colors do not count toward widths.
class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Cell {
    std::string text;
    Color color = Color::kNone;
  };

  void column(std::string header, Align align = Align::kLeft);
  void row(std::vector<Cell> cells);
  bool empty() const { return rows_.empty(); }
  std::string render(const Style& style) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace kpid::ctl
