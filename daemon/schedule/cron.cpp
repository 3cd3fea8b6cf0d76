#include "schedule/cron.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

namespace schedule {

namespace {

struct Field
{
  unsigned min;
  unsigned max;
  const char* what;                       // "an hour 0-23": the expected part of a message
  std::array<std::string_view, 12> names; // names[i] stands for min + i; empty: none
};

constexpr std::array<Field, 5> k_fields = { {
  { 0, 59, "a minute 0-59", {} },
  { 0, 23, "an hour 0-23", {} },
  { 1, 31, "a day of the month 1-31", {} },
  { 1,
    12,
    "a month 1-12 or jan-dec",
    { "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" } },
  // 7 is Sunday too (Vixie cron); the names cover 0-6.
  { 0, 7, "a weekday 0-7 or sun-sat", { "sun", "mon", "tue", "wed", "thu", "fri", "sat" } },
} };

// Long input is cut in messages: a config value is shown, never a page of it.
std::string
quote(std::string_view s)
{
  std::string out(s.substr(0, 60));
  if (s.size() > 60) {
    out += "...";
  }
  return "\"" + out + "\"";
}

std::vector<std::string_view>
split(std::string_view s, char sep)
{
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    parts.push_back(
      s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) {
      return parts;
    }
    start = pos + 1;
  }
}

std::optional<unsigned>
number(std::string_view s)
{
  // Four digits are more than any field holds; the bound keeps the arithmetic small.
  if (s.empty() || s.size() > 4) {
    return std::nullopt;
  }
  unsigned v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

// A number or (for months and weekdays) a three-letter name, within the field's range.
std::optional<unsigned>
value(const Field& f, std::string_view s)
{
  if (auto n = number(s)) {
    if (*n < f.min || *n > f.max) {
      return std::nullopt;
    }
    return n;
  }
  if (s.size() != 3) {
    return std::nullopt;
  }
  std::string lower;
  for (const char c : s) {
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  for (std::size_t i = 0; i < f.names.size(); ++i) {
    if (!f.names[i].empty() && f.names[i] == lower) {
      return f.min + static_cast<unsigned>(i);
    }
  }
  return std::nullopt;
}

// Parses one field into `bits` (indexed by value); returns an error message on failure.
template<std::size_t N>
std::optional<std::string>
parse_field(std::size_t index, std::string_view text, std::bitset<N>& bits)
{
  const Field& f = k_fields[index];
  const auto where = fmt::format("in field {} of the cron line", index + 1);
  for (const auto item : split(text, ',')) {
    const auto bad = [&] {
      return fmt::format("expected {} {}, found {}", f.what, where,
                         quote(item.empty() ? text : item));
    };
    const auto slash = item.find('/');
    const std::string_view range = item.substr(0, slash);
    unsigned step = 1;
    if (slash != std::string_view::npos) {
      const auto s = number(item.substr(slash + 1));
      if (!s || *s == 0) {
        return fmt::format("expected a step of at least 1 {}, found {}", where, quote(item));
      }
      step = *s;
    }
    unsigned low = 0;
    unsigned high = 0;
    if (range == "*") {
      low = f.min;
      // '*' in the weekday field is 0-6: 7 would only repeat Sunday.
      high = index == 4 ? 6 : f.max;
    } else if (const auto dash = range.find('-'); dash != std::string_view::npos) {
      const auto a = value(f, range.substr(0, dash));
      const auto b = value(f, range.substr(dash + 1));
      if (!a || !b) {
        return bad();
      }
      if (*a > *b) {
        return fmt::format("expected a range low-high with low <= high {}, found {}", where,
                           quote(item));
      }
      low = *a;
      high = *b;
    } else {
      const auto a = value(f, range);
      if (!a) {
        return bad();
      }
      if (slash != std::string_view::npos) {
        // Vixie cron reads "5/15" as just 5; others as 5-59/15. Refuse the guess.
        return fmt::format("expected a range or '*' before '/' (such as 5-59/15) {}, found {}",
                           where, quote(item));
      }
      low = *a;
      high = *a;
    }
    // A step past the range's width names only its first value ("*/8" in the weekday
    // field is just Sunday, yet still counts as '*' for the day rule): refuse the riddle.
    if (step > 1 && step > high - low) {
      return fmt::format("expected a step of at most {} {} (a larger step names only {}: "
                         "write that alone), found {}",
                         std::max(1U, high - low), where, low, quote(item));
    }
    for (unsigned v = low; v <= high; v += step) {
      bits.set(index == 4 && v == 7 ? 0 : v);
    }
  }
  return std::nullopt;
}

unsigned
max_days(unsigned month)
{
  constexpr std::array<unsigned, 13> k_days = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  return k_days[month];
}

} // namespace

util::Result<Cron>
Cron::parse(std::string_view text)
{
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
      ++i;
    }
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') {
      ++i;
    }
    if (i > start) {
      fields.push_back(text.substr(start, i - start));
    }
  }
  if (fields.size() != 5) {
    return util::make_error("parse",
                            fmt::format("expected a 5-field cron line or 'every <duration>', "
                                        "found {} ({} field{})",
                                        quote(text), fields.size(), fields.size() == 1 ? "" : "s"));
  }
  Cron c;
  std::optional<std::string> err = parse_field(0, fields[0], c.m_minutes);
  if (!err) {
    err = parse_field(1, fields[1], c.m_hours);
  }
  if (!err) {
    err = parse_field(2, fields[2], c.m_days);
  }
  if (!err) {
    err = parse_field(3, fields[3], c.m_months);
  }
  if (!err) {
    std::bitset<8> weekdays;
    err = parse_field(4, fields[4], weekdays);
    for (unsigned d = 0; d < 7; ++d) {
      c.m_weekdays.set(d, weekdays.test(d));
    }
  }
  if (err) {
    return util::make_error("parse", *err);
  }
  c.m_hour_star = fields[1].starts_with('*');
  c.m_dom_star = fields[2].starts_with('*');
  c.m_dow_star = fields[4].starts_with('*');
  for (unsigned h = 0; h < 24; ++h) {
    for (unsigned m = 0; m < 60 && c.m_hours.test(h); ++m) {
      if (c.m_minutes.test(m)) {
        c.m_times.push_back(static_cast<std::uint16_t>(h * 60 + m));
      }
    }
  }
  if (!c.runs_at_all()) {
    return util::make_error("parse", fmt::format("expected a cron line that matches some date, "
                                                 "found {}, which never runs",
                                                 quote(text)));
  }
  return c;
}

bool
Cron::day_matches(unsigned month, unsigned day, unsigned weekday) const
{
  if (!m_months.test(month)) {
    return false;
  }
  if (!m_dom_star && !m_dow_star) {
    return m_days.test(day) || m_weekdays.test(weekday);
  }
  return m_days.test(day) && m_weekdays.test(weekday);
}

bool
Cron::runs_at_all() const
{
  if (!m_dom_star && !m_dow_star) {
    return true; // every week has each weekday
  }
  // Over the 400-year Gregorian cycle each valid (month, day) falls on every weekday, so
  // the line runs when some month in it has one of its days (Feb 29 included).
  for (unsigned m = 1; m <= 12; ++m) {
    for (unsigned d = 1; d <= max_days(m); ++d) {
      if (m_months.test(m) && m_days.test(d)) {
        return true;
      }
    }
  }
  return false;
}

std::string
Cron::day_key() const
{
  return m_days.to_string() + m_months.to_string() + m_weekdays.to_string() +
         (m_dom_star ? "*" : "-") + (m_dow_star ? "*" : "-");
}

} // namespace schedule
