#pragma once
// OpenSLO v1 import: the YAML documents named by the config's `openslo` patterns become
// slo::SloOptions beside the [[slo]] tables, so teams that keep OpenSLO specs use them as they
// are. README "Importing OpenSLO" lists what maps to what and what is refused.

#include <map>
#include <string>
#include <vector>

#include "kpid/alert/options.h"
#include "kpid/config/config.h"
#include "kpid/core/source_pos.h"
#include "kpid/slo/options.h"

namespace kpid::config {

// One file's text and the name errors give it.
struct OpenSloSource {
  std::string file;
  std::string text;
};

// Parses every YAML document of `sources` (multi-document files allowed) and appends one
// SloOptions per `kind: SLO` document to `out`, in file and document order (origin "openslo").
// SLI, AlertPolicy, AlertCondition, AlertNotificationTarget, DataSource and Service documents
// may stand anywhere in `sources`: references resolve across all of them. `slo_ids` holds the
// SLO ids defined so far ([[slo]] tables) and receives the imported ones, so duplicates are
// errors either way. A notification target whose name is one of `receivers` routes the
// policy's alerts to that receiver. Every problem is appended to `errors` (file, line,
// column, "KIND NAME: dotted.field"); an SLO with an error is not appended to `out`.
void import_openslo(const std::vector<OpenSloSource>& sources,
                    const std::vector<alert::ReceiverOptions>& receivers,
                    std::map<std::string, SourcePos>& slo_ids, std::vector<slo::SloOptions>& out,
                    std::vector<ConfigError>& errors);

// Expands config.openslo (glob patterns relative to the directory of `source_name`, files of
// one pattern in name order; a pattern without wildcards must name an existing file), reads the
// files and imports them into config.slos with import_openslo.
void load_openslo(const std::string& source_name, Config& config,
                  std::map<std::string, SourcePos>& slo_ids, std::vector<ConfigError>& errors);

}  // namespace kpid::config
