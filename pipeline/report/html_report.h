// Renders a ReportData as one self-contained HTML page: inline SVG plots and CSS, no scripts,
// no network access. Sections: alert list with one-line explanations; an ECG strip around each
// arrhythmia alert with the detected beats marked; per-night trends (pressure, leak, respiratory
// rate, minute ventilation, CO2) with apneas, hypopneas and hypoventilation shaded; the 30-day
// adherence calendar with the compliance rule.
#pragma once

#include <string>

#include "pipeline/report/report_data.h"

namespace vigil::report {

std::string RenderHtml(const ReportData& data);

}  // namespace vigil::report
