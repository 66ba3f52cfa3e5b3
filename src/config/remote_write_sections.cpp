// [[remote_write]] tables and their [remote_write.queue] (forward::RemoteWriteOptions).

#include "loader.h"

namespace kpid::config::detail {

void Loader::load_remote_writes(const toml::node& node,
                                std::vector<forward::RemoteWriteOptions>& out) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    error(node, "remote_write", "expected [[remote_write]] tables");
    return;
  }
  std::vector<int> lines;  // where each name was first defined
  for (const auto& element : *tables) {
    const toml::table& t = *element.as_table();
    forward::RemoteWriteOptions r;
    const SourcePos pos = pos_of(t);
    r.source = pos.file + ":" + std::to_string(pos.line);
    std::string section = "remote_write[" + std::to_string(out.size()) + "]";
    if (require(t, t, section, "name")) {
      get_string(t, section, "name", r.name);
      const toml::node& at = *t.get("name");
      if (!r.name.empty()) section = "remote_write." + r.name;
      if (at.is_string() && r.name.empty()) error(at, section + ".name", "must not be empty");
      for (size_t i = 0; i < out.size(); ++i) {
        if (!r.name.empty() && out[i].name == r.name) {
          error(at, section + ".name",
                "duplicate remote_write name; first defined at line " + std::to_string(lines[i]));
        }
      }
    }
    static constexpr std::array kKeys = {
        "name",       "url",     "timeout", "protocol",     "send",
        "match",      "drop",    "queue",   "bearer_token", "bearer_token_file",
        "basic_auth", "headers", "tls",     "self_interval"};
    check_keys(t, section, kKeys);
    if (require(t, t, section, "url")) {
      get_string(t, section, "url", r.url);
      const toml::node& at = *t.get("url");
      if (at.is_string() && r.url.rfind("http://", 0) != 0 && r.url.rfind("https://", 0) != 0) {
        error(at, section + ".url", "must be an http:// or https:// URL");
      }
    }
    get_duration(t, section, "timeout", 100, r.timeout);
    get_choice(t, section, "protocol", std::array{"1.0", "2.0"}, r.protocol);
    if (t.contains("send")) {
      r.send.clear();
      get_strings(t, section, "send", r.send);
      static constexpr std::array kSend = {"samples", "kpis", "slos", "alerts", "rules"};
      for (const auto& s : r.send) {
        if (std::find(kSend.begin(), kSend.end(), s) != kSend.end()) continue;
        error(*t.get("send"), section + ".send",
              "unknown value \"" + s + "\"; expected samples, kpis, slos, alerts or rules" +
                  suggest(s, kSend));
      }
      if (r.send.empty() && t.get("send")->is_array()) {
        error(*t.get("send"), section + ".send",
              "must name at least one of samples, kpis, slos, alerts, rules");
      }
    }
    get_duration(t, section, "self_interval", 1'000, r.self_interval);
    get_strings(t, section, "match", r.match);
    get_strings(t, section, "drop", r.drop);
    if (const toml::table* q = table_at(t, section, "queue")) {
      const std::string qs = section + ".queue";
      check_keys(
          *q, qs,
          std::array{"max_bytes", "max_age", "min_shards", "max_shards", "max_samples_per_send",
                     "batch_send_deadline", "min_backoff", "max_backoff"});
      forward::QueueOptions& o = r.queue;
      get_size(*q, qs, "max_bytes", 1 << 20, o.max_bytes);
      get_duration(*q, qs, "max_age", 1'000, o.max_age);
      get_count(*q, qs, "min_shards", 1, 64, o.min_shards);
      get_count(*q, qs, "max_shards", 1, 64, o.max_shards);
      get_count(*q, qs, "max_samples_per_send", 1, 100'000, o.max_samples_per_send);
      get_duration(*q, qs, "batch_send_deadline", 1, o.batch_send_deadline);
      get_duration(*q, qs, "min_backoff", 1, o.min_backoff);
      get_duration(*q, qs, "max_backoff", 1, o.max_backoff);
      if (o.min_shards > o.max_shards) {
        error(*q, qs + ".min_shards",
              "must not exceed max_shards (" + std::to_string(o.max_shards) + ")");
      }
      if (o.min_backoff > o.max_backoff) {
        error(*q, qs + ".min_backoff", "must not exceed max_backoff");
      }
    }
    load_client_auth(t, section, r.auth);
    lines.push_back(pos.line);
    out.push_back(std::move(r));
  }
}

}  // namespace kpid::config::detail
