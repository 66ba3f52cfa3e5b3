#include "kpid/core/json.h"

#include <cmath>

#include <boost/json.hpp>

#include "kpid/core/time.h"

namespace kpid {

void append_json_text(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      out.append("null");
      return;
    case boost::json::kind::bool_:
      out.append(v.get_bool() ? "true" : "false");
      return;
    case boost::json::kind::int64:
      out.append(std::to_string(v.get_int64()));
      return;
    case boost::json::kind::uint64:
      out.append(std::to_string(v.get_uint64()));
      return;
    case boost::json::kind::double_:
      if (std::isfinite(v.get_double())) {
        append_prom_float(out, v.get_double());
      } else {
        out.append("null");
      }
      return;
    case boost::json::kind::string:
      out.append(boost::json::serialize(v));
      return;
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_json_text(out, item);
      }
      out.push_back(']');
      return;
    }
    case boost::json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        out.append(boost::json::serialize(boost::json::string_view(key)));
        out.push_back(':');
        append_json_text(out, item);
      }
      out.push_back('}');
      return;
    }
  }
}

std::string to_json_text(const boost::json::value& value) {
  std::string out;
  append_json_text(out, value);
  return out;
}

}  // namespace kpid
