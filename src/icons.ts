import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A rack of three servers, each with a status light.
 */
const clusterSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path fill-rule="evenodd" d="M3 2h18v6H3zm1.5 1.5v3h15v-3z"/>
    <path fill-rule="evenodd" d="M3 9h18v6H3zm1.5 1.5v3h15v-3z"/>
    <path fill-rule="evenodd" d="M3 16h18v6H3zm1.5 1.5v3h15v-3z"/>
    <rect x="6" y="4.5" width="6" height="1"/>
    <rect x="6" y="11.5" width="6" height="1"/>
    <rect x="6" y="18.5" width="6" height="1"/>
    <circle cx="16.5" cy="5" r="1"/>
    <circle cx="16.5" cy="12" r="1"/>
    <circle cx="16.5" cy="19" r="1"/>
  </g>
</svg>`;

/**
 * The icon of the HPC jobs sidebar.
 */
export const clusterIcon = new LabIcon({
  name: 'parallelworks-lab:cluster',
  svgstr: clusterSvg
});
