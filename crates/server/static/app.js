// The portal's only script (the content security policy allows no inline script):
// print buttons, and the indicator page's charts drawn from its JSON data block.
(function () {
  document.querySelectorAll('[data-print]').forEach(function (b) {
    b.addEventListener('click', function () { window.print(); });
  });
  var block = document.getElementById('chart-data');
  if (!block || typeof echarts === 'undefined') return;
  var data = JSON.parse(block.textContent);
  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el || !option) return;
    var chart = echarts.init(el);
    chart.setOption(option);
    var drill = el.getAttribute('data-drill');
    if (drill) chart.on('click', function (p) {
      if (p.data && p.data.code) location.href = drill + encodeURIComponent(p.data.code);
    });
    window.addEventListener('resize', function () { chart.resize(); });
  }
  draw('trend', data.trend);
  draw('months', data.months);
  draw('bars', data.bars);
})();
