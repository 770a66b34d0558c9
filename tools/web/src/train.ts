import { EventBus, type EventOf } from '@dfd/core';
import { backendOrderFromUrl, chooseBackend } from './backend.js';
import { drawLossPlot, type LossPoint } from './plot.js';
import { demoOptionsFromUrl, describeDemo, runTrainingDemo } from './train-core.js';

// The training page: the trainer emits `batchEnd` on the EventBus; this page only listens, the
// same way the console and JSONL plugins do in `dfd train`.

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const COLOURS: Record<string, string> = { total: '#0066cc', cls: '#e07000', mi: '#2a9d3a' };

function showError(err: unknown): void {
  $('error').textContent = err instanceof Error ? err.message : String(err);
  document.body.dataset.state = 'error';
  console.error(err);
}

async function train(): Promise<void> {
  const opts = { ...demoOptionsFromUrl(location.search), steps: Number(($('steps') as HTMLInputElement).value) };
  const start = $('start') as HTMLButtonElement;
  start.disabled = true;
  document.body.dataset.training = 'running';
  const rows = $('loss-rows');
  rows.replaceChildren();
  const series: Record<string, LossPoint[]> = { total: [], cls: [], mi: [] };
  const losses: number[] = [];
  let last = performance.now();
  const onBatchEnd = (e: EventOf<'batchEnd'>) => {
    const now = performance.now();
    losses.push(e.loss.total);
    for (const key of Object.keys(series)) {
      const v = e.loss[key];
      if (typeof v === 'number') series[key]!.push({ step: e.globalStep, value: v });
    }
    const tr = document.createElement('tr');
    for (const v of [String(e.globalStep), fmt(e.loss.total), fmt(e.loss.cls), fmt(e.loss.mi), (now - last).toFixed(0)]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    last = now;
    rows.append(tr);
    rows.dataset.losses = JSON.stringify(losses);
    $('progress').textContent = `step ${e.globalStep} / ${e.totalSteps}`;
    drawLossPlot($('loss-plot') as HTMLCanvasElement, series, COLOURS);
  };
  const attach = (bus: EventBus) => {
    bus.subscribe('batchEnd', onBatchEnd, 'train-page');
    bus.subscribe('error', (e: EventOf<'error'>) => showError(new Error(e.message)), 'train-page');
  };
  try {
    const result = await runTrainingDemo(opts, attach);
    if (result.status !== 'completed') throw new Error(`training ${result.status}: ${result.reason ?? ''}`);
    $('progress').textContent = `done: ${losses.length} steps`;
    document.body.dataset.training = 'done';
  } finally {
    start.disabled = false;
  }
}

function fmt(v: number | undefined): string {
  return typeof v === 'number' ? v.toFixed(5) : '–';
}

async function init(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const choice = await chooseBackend(backendOrderFromUrl(location.search));
  $('backend').textContent = choice.backend;
  document.body.dataset.backend = choice.backend;
  $('backend-notes').textContent = choice.skipped.map((s) => `${s.backend} skipped: ${s.reason}`).join(' · ');
  const opts = demoOptionsFromUrl(location.search);
  ($('steps') as HTMLInputElement).value = String(opts.steps);
  $('config').textContent = describeDemo(opts);
  const start = $('start') as HTMLButtonElement;
  start.disabled = false;
  start.addEventListener('click', () => void train().catch(showError));
  document.body.dataset.state = 'ready';
  if (params.get('autostart') === '1') await train();
}

init().catch(showError);
