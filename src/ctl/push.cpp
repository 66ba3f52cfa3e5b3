// kpictl push: line protocol from a file or stdin to POST /write, in batches, with a progress
// bar on a terminal. Bad lines are reported by their line number in the whole input.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <thread>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

constexpr size_t kErrorsPrinted = 20;
constexpr int kAttempts = 5;  // per batch, for answers that say "try again" (429, 503)

struct Progress {
  bool shown = false;
  uint64_t total_bytes = 0;  // 0 when unknown (stdin, a pipe)
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_drawn{};

  void draw(std::ostream& err, uint64_t lines, uint64_t bytes, bool final) {
    if (!shown) return;
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_drawn < std::chrono::milliseconds(100)) return;
    last_drawn = now;
    const double seconds = std::chrono::duration<double>(now - start).count();
    char rate[64];
    std::snprintf(rate, sizeof rate, "%.1f MB  %.1f MB/s", static_cast<double>(bytes) / 1e6,
                  seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0);
    std::string text = "\r";
    if (total_bytes > 0) {
      const double fraction = static_cast<double>(bytes) / static_cast<double>(total_bytes);
      char percent[16];
      std::snprintf(percent, sizeof percent, " %3.0f%%  ", std::min(fraction, 1.0) * 100);
      text += progress_bar(fraction, 30) + percent;
    }
    text += grouped(lines) + " lines  " + rate + "\x1b[K";
    err << text << (final ? "\n" : "") << std::flush;
  }
};

bool is_data_line(std::string_view line) {
  const size_t first = line.find_first_not_of(" \t\r");
  return first != std::string_view::npos && line[first] != '#';
}

// "partial write: 2 of 10 lines rejected" → 2.
uint64_t rejected_count(std::string_view message) {
  constexpr std::string_view kPrefix = "partial write: ";
  if (!message.starts_with(kPrefix)) return 0;
  return std::strtoull(std::string(message.substr(kPrefix.size(), 20)).c_str(), nullptr, 10);
}

}  // namespace

int cmd_push(Context& c) {
  const std::string source = c.args.positional.empty() ? "-" : c.args.positional[0];
  const std::string name = source == "-" ? "stdin" : source;
  size_t batch_lines = 5000;
  if (auto b = c.args.value("batch")) {
    auto n = number_arg(*b, "--batch");
    if (!n || *n < 1 || *n != std::floor(*n)) {
      return c.usage(Status::invalid_argument("--batch: expected a whole number of lines >= 1"));
    }
    batch_lines = static_cast<size_t>(*n);
  }
  const std::string precision = c.args.value("precision").value_or("ns");

  Progress progress;
  progress.shown = c.stderr_is_tty || c.args.has("progress");
  std::ifstream file;
  std::istream* input = &c.in;
  if (source != "-") {
    file.open(source, std::ios::binary);
    if (!file) {
      return c.usage(
          Status::invalid_argument("cannot read " + source + ": " + std::strerror(errno)));
    }
    std::error_code ec;
    if (std::filesystem::is_regular_file(source, ec)) {
      progress.total_bytes = std::filesystem::file_size(source, ec);
    }
    input = &file;
  }
  auto api = c.api();
  if (!api) return c.fail(api.status());

  uint64_t lines = 0, data_lines = 0, rejected = 0, bytes = 0;
  json::array errors;
  std::string batch;
  uint64_t batch_first_line = 1;
  size_t in_batch = 0;
  Status stopped = Status::ok();

  auto send = [&]() -> Status {
    if (in_batch == 0) return Status::ok();
    const std::string target = "/write?" + query_string({{"precision", precision}});
    for (int attempt = 1;; ++attempt) {
      auto answer = (*api)->raw("POST", target, batch, {{"Content-Type", "text/plain"}});
      if (!answer) return answer.status();
      if (answer->status == 204) break;
      const bool retry = answer->status == 429 || answer->status == 503;
      if (retry && attempt < kAttempts) {
        std::this_thread::sleep_for(std::chrono::seconds(1 << (attempt - 1)));
        continue;
      }
      boost::system::error_code ec;
      json::value parsed = json::parse(answer->body, ec);
      const json::value* listed = ec ? nullptr : field_of(parsed, "rejected_lines");
      if (answer->status != 400 || listed == nullptr || !listed->is_array()) {
        return status_of_answer(answer->status, answer->body);
      }
      // A partial write: the good lines are stored; renumber the bad ones in the whole input.
      rejected += rejected_count(text_of(parsed, "error"));
      for (const auto& e : listed->get_array()) {
        const auto line = static_cast<uint64_t>(number_of(e, "line").value_or(0));
        errors.push_back(
            json::object{{"line", batch_first_line + line - 1}, {"error", text_of(e, "error")}});
      }
      break;
    }
    batch.clear();
    batch_first_line = lines + 1;
    in_batch = 0;
    return Status::ok();
  };

  std::string line;
  while (std::getline(*input, line)) {
    ++lines;
    bytes += line.size() + 1;
    if (is_data_line(line)) ++data_lines;
    batch += line;
    batch += '\n';
    if (++in_batch >= batch_lines) {
      if (stopped = send(); !stopped) break;
      progress.draw(c.err, lines, bytes, false);
    }
  }
  if (stopped) stopped = send();
  progress.draw(c.err, stopped ? lines : batch_first_line - 1, bytes, true);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - progress.start).count();

  size_t printed = 0;
  for (const auto& e : errors) {
    if (printed++ == kErrorsPrinted) break;
    c.err << name << ":" << text_of(e, "line") << ": " << text_of(e, "error") << "\n";
  }
  if (rejected > kErrorsPrinted) {
    c.err << "... and " << grouped(rejected - std::min<uint64_t>(printed, rejected))
          << " more rejected lines\n";
  }
  if (!stopped) {
    c.err << "kpictl: push stopped at line " << batch_first_line << " of " << name << ": "
          << stopped.message() << "\n";
    if (batch_first_line > 1) {
      c.err << "kpictl: lines 1-" << batch_first_line - 1 << " were sent and answered; resume "
            << "with: tail -n +" << batch_first_line << " " << (source == "-" ? "FILE" : source)
            << " | kpictl push\n";
    }
    return exit_code_of(stopped);
  }
  const uint64_t stored = data_lines - std::min(rejected, data_lines);
  if (c.json) {
    c.print_json(json::object{{"lines", lines},
                              {"stored", stored},
                              {"rejected", rejected},
                              {"errors", errors},
                              {"seconds", std::round(seconds * 1000) / 1000}});
  } else {
    char elapsed[32];
    std::snprintf(elapsed, sizeof elapsed, "%.2f s", seconds);
    c.out << "pushed " << grouped(lines) << (lines == 1 ? " line" : " lines") << " from " << name
          << " in " << elapsed << ": " << grouped(stored) << " stored, " << grouped(rejected)
          << " rejected\n";
  }
  return rejected > 0 ? kExitRefused : kExitOk;
}

}  // namespace kpid::ctl
