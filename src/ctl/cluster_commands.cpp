// kpictl cluster: this kpid's shard and which shard owns each configured KPI and SLO
// (GET /api/v1/cluster).
#include <ostream>

#include "command.h"

namespace kpid::ctl {

namespace json = boost::json;

int cmd_cluster(Context& c) {
  auto api = c.api();
  if (!api) return c.fail(api.status());
  auto answer = (*api)->get("/api/v1/cluster");
  if (!answer) return c.fail(answer.status());
  if (c.json) {
    c.print_json(*answer);
    return kExitOk;
  }
  const bool all = c.args.has("all");
  Table table;
  table.column("KIND");
  table.column("ID");
  table.column("SHARD", Table::Align::kRight);
  table.column("HERE");
  size_t listed = 0;
  for (const char* kind : {"kpis", "slos", "rule_groups"}) {
    const json::value* list = field_of(*answer, kind);
    if (list == nullptr || !list->is_array()) continue;
    for (const auto& item : list->get_array()) {
      const json::value* owned = field_of(item, "owned");
      const bool here = owned != nullptr && owned->is_bool() && owned->get_bool();
      if (!here && !all) continue;
      const auto shard = number_of(item, "shard");
      const std::string_view name(kind);
      table.row({{name == "kpis"   ? "kpi"
                  : name == "slos" ? "slo"
                                   : "rule_group"},
                 {text_of(item, "id")},
                 {shard ? std::to_string(static_cast<long long>(*shard)) : "-"},
                 {here ? "yes" : "no", here ? Color::kGreen : Color::kNone}});
      ++listed;
    }
  }
  const json::value* owned = field_of(*answer, "owned");
  const auto kpis = owned ? number_of(*owned, "kpis") : std::nullopt;
  const auto slos = owned ? number_of(*owned, "slos") : std::nullopt;
  const auto groups = owned ? number_of(*owned, "rule_groups") : std::nullopt;
  c.out << "shard " << text_of(*answer, "shard") << ": owns "
        << static_cast<long long>(kpis.value_or(0)) << " KPIs, "
        << static_cast<long long>(slos.value_or(0)) << " SLOs and "
        << static_cast<long long>(groups.value_or(0)) << " rule groups"
        << (all ? "" : " (--all lists every configured one)") << "\n";
  if (listed > 0) c.out << "\n" << table.render(c.style);
  return kExitOk;
}

}  // namespace kpid::ctl
