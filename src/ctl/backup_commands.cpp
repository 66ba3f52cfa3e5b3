// kpictl backup [DIR] / backup --list [DIR]: the daemon's backup API (POST /api/v1/admin/backup,
// GET /api/v1/admin/backups). kpictl restore BACKUP_DIR DATA_DIR: runs kpid --restore, which
// needs no running daemon (kpictl itself has no RocksDB).
#include <cctype>
#include <cstdio>
#include <iterator>
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

namespace {

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/') {
      out.push_back(static_cast<char>(ch));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", ch);
      out += hex;
    }
  }
  return out;
}

std::string size_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(units)) {
    bytes /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

std::string integer_of(const json::value& o, std::string_view key) {
  return std::to_string(static_cast<uint64_t>(number_of(o, key).value_or(0)));
}

int list_backups(Context& c, ApiClient& api) {
  std::string path = "/api/v1/admin/backups";
  if (!c.args.positional.empty()) path += "?dir=" + percent_encode(c.args.positional[0]);
  auto data = api.get(path);
  if (!data) return c.fail(data.status());
  if (c.json) {
    c.print_json(*data);
    return kExitOk;
  }
  const json::value* backups = field_of(*data, "backups");
  if (backups == nullptr || !backups->is_array() || backups->get_array().empty()) {
    c.out << "no backups in " << text_of(*data, "dir") << "\n";
    return kExitOk;
  }
  c.out << "backups in " << text_of(*data, "dir") << ":\n";
  Table table;
  table.column("ID", Table::Align::kRight);
  table.column("TAKEN");
  table.column("SIZE", Table::Align::kRight);
  table.column("FILES", Table::Align::kRight);
  table.column("FORMAT", Table::Align::kRight);
  for (const auto& b : backups->get_array()) {
    table.row({{integer_of(b, "id")},
               {when_of(b, "timestamp")},
               {size_text(number_of(b, "size_bytes").value_or(0))},
               {integer_of(b, "files")},
               {integer_of(b, "format_version")}});
  }
  c.out << table.render(c.style);
  return kExitOk;
}

}  // namespace

int cmd_backup(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  if (c.args.has("list")) return list_backups(c, **api);
  json::object body;
  if (!c.args.positional.empty()) body["dir"] = c.args.positional[0];
  const json::value request = body;
  auto data = (*api)->call("POST", "/api/v1/admin/backup", &request);
  if (!data) return c.fail(data.status());
  if (c.json) {
    c.print_json(*data);
    return kExitOk;
  }
  c.out << "backup " << integer_of(*data, "id") << " into " << text_of(*data, "dir") << ": "
        << integer_of(*data, "files") << " files, "
        << size_text(number_of(*data, "size_bytes").value_or(0)) << ", taken "
        << when_of(*data, "timestamp") << "\n";
  return kExitOk;
}

int cmd_restore(Context& c) {
  auto kpid = find_kpid(c.terminal, "restore runs kpid --restore");
  if (!kpid) {
    c.err << "kpictl: " << kpid.status().message() << "\n";
    return kExitUnavailable;
  }
  std::vector<std::string> argv = {*kpid, "--restore", c.args.positional[0], "--data-dir",
                                   c.args.positional[1]};
  if (auto id = c.args.value("id")) {
    argv.push_back("--backup-id");
    argv.push_back(*id);
  }
  auto code = run_passing_through(argv, c.out, c.err);
  if (!code) return c.fail(code.status());
  return *code;
}

}  // namespace kpid::ctl
